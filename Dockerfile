# The nsdebug agent image: the DaemonSet runs `nsdebug-agent serve` from it (hostPID, privileged)
# and `kubectl nsdebug` execs `nsdebug-agent enter|ps|info` in it.
#
#   docker build -t nsdebug.local/agent:dev .                  (Docker / BuildKit)
#   podman build --pull=never -t nsdebug.local/agent:dev .     (no registry: a local node base)
#
# Stage `build` compiles native/ and the TypeScript on the Node base and bundles the agent with
# esbuild (build/agent.mjs: dist/agent/, nothing of the CLI's src/kube, src/cli or client-node).
# The runtime starts from scratch and receives only what the agent executes: the node binary and
# the shared libraries it and the native code link against, the agent's bundle, koffi (the one
# package the bundle leaves to Node: a native addon), libnsdebug.so and the native entry points,
# and Debian's static busybox as the toolbox. No package manager, npm or libc userland of the base
# comes along (busybox gives an operator `sh`).
# The Node.js LTS line the project runs on (test/support/deps.sh, package.json engines).
ARG NODE_IMAGE=node:26-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make busybox-static \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# koffi ships prebuilt binaries: no install script is needed (npm 11 would skip them anyway).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# Only what the image runs: not the CLI's bundle and start-up snapshot (npm run build:js).
RUN npm run -s build:native && npm run -s build:ts && npm run -s build:agent

# Assemble the runtime's root filesystem in /rootfs.
RUN set -eux; \
    R=/rootfs; \
    mkdir -p $R/app/native $R/usr/local/bin $R/usr/lib/nsdebug $R/bin $R/usr/bin $R/etc $R/tmp $R/run; \
    chmod 1777 $R/tmp; \
    # package.json: the package root the bundle finds above itself (src/package.ts), its version
    cp package.json $R/app/; \
    mkdir -p $R/app/bin $R/app/dist/agent $R/app/node_modules/@koromix; \
    cp bin/nsdebug-agent.js $R/app/bin/; \
    cp dist/agent/*.js dist/agent/THIRD-PARTY-LICENSES.txt $R/app/dist/agent/; \
    # koffi, and its binary: the optional package @koromix/koffi-<platform>, the only one npm installed
    cp -a node_modules/koffi $R/app/node_modules/; \
    cp -a node_modules/@koromix/koffi-* $R/app/node_modules/@koromix/; \
    # what never runs in the agent: koffi's C/C++ sources beside its JavaScript in src/, typings,
    # maps, docs
    find $R/app/node_modules/koffi/src -type f ! -name '*.js' ! -name '*.cjs' -delete; \
    rm -rf $R/app/node_modules/koffi/vendor $R/app/node_modules/koffi/doc; \
    find $R/app -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.md' \) -delete; \
    cp native/libnsdebug.so native/nsdebug-agent native/nsdebug-supervisor $R/app/native/; \
    cp "$(command -v node)" $R/usr/local/bin/node; \
    # the native entry point: hands `enter` to the resident serve, runs the Node agent otherwise
    ln -s /app/native/nsdebug-agent $R/usr/local/bin/nsdebug-agent; \
    # the toolbox: static, so it runs inside any container's mount namespace by fd
    cp /bin/busybox $R/usr/lib/nsdebug/busybox; \
    ln -s /usr/lib/nsdebug/busybox $R/bin/sh; \
    ln -s /usr/lib/nsdebug/busybox $R/usr/bin/env; \
    # shared libraries of every ELF file that runs: node, the native entry point and library, addons
    find $R/usr/local/bin/node $R/app/native $R/app/node_modules -type f \( -name node -o -name nsdebug-agent -o -name nsdebug-supervisor -o -name '*.node' -o -name '*.so' \) -exec ldd {} \; \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u \
      | while read -r lib; do cp -L --parents "$lib" $R; done; \
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' > $R/etc/passwd; \
    printf 'root:x:0:\nnogroup:x:65534:\n' > $R/etc/group; \
    # fail the build here, not in a cluster: every chunk of the bundle loads in the runtime tree
    # (the bundled packages, koffi and its addon with them), and so does libnsdebug.so
    chroot $R /usr/bin/env -u NODE_EXTRA_CA_CERTS node --input-type=module -e ' \
      import { readdirSync } from "node:fs"; \
      for (const f of readdirSync("/app/dist/agent")) if (f.endsWith(".js") && f !== "nsdebug-agent.js") await import(`/app/dist/agent/${f}`); \
      const { loadNativeLibrary } = await import("/app/dist/agent/libnsdebug.js"); \
      loadNativeLibrary(); \
    '; \
    # (no /proc in this chroot for the entry point to find its package: name the script)
    chroot $R /usr/bin/env -u NODE_EXTRA_CA_CERTS NSDEBUG_AGENT_JS=/app/bin/nsdebug-agent.js nsdebug-agent --help > /dev/null

FROM scratch
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    NODE_ENV=production
WORKDIR /app
ENTRYPOINT ["nsdebug-agent"]
CMD ["serve"]
