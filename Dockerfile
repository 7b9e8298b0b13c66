# The nsdebug agent image: the DaemonSet runs `nsdebug-agent serve` from it (hostPID, privileged)
# and `kubectl nsdebug` execs `nsdebug-agent enter|ps|info` in it.
#
#   docker build -t nsdebug.local/agent:dev .                  (Docker / BuildKit)
#   podman build --pull=never -t nsdebug.local/agent:dev .     (no registry: a local node base)
#
# Stage `build` compiles the TypeScript and native/ on the Node base. The runtime starts from
# scratch and receives only what the agent executes: the node binary and the shared libraries it
# and the native code link against, the agent's modules and the packages they import (found by
# walking its import graph), libnsdebug.so, and Debian's static busybox as the toolbox. No
# package manager, npm or libc userland of the base comes along (busybox gives an operator `sh`).
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
# prune first: an agent module that imports a devDependency then fails the walk below
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# The agent's module graph, from its entry point: the dist files it imports and the packages
# (with their dependencies) it needs. The CLI's own packages (client-node, oclif…) stay behind.
RUN node -e ' \
      const fs = require("fs"), path = require("path"); \
      const files = new Set(), bare = new Set(), pkgs = new Set(); \
      const walk = (f) => { \
        if (files.has(f)) return; files.add(f); \
        for (const [, s] of fs.readFileSync(f, "utf8").matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)["\x27]([^"\x27\n]+)["\x27]/g)) { \
          if (s.startsWith(".")) walk(path.resolve(path.dirname(f), s)); \
          else if (!s.startsWith("node:")) bare.add(s.split("/").slice(0, s.startsWith("@") ? 2 : 1).join("/")); \
        } \
      }; \
      const need = (name, from, optional) => { \
        for (let dir = from; ; dir = path.dirname(dir)) { \
          const p = path.join(dir, "node_modules", name); \
          if (fs.existsSync(path.join(p, "package.json"))) { \
            if (pkgs.has(p)) return; pkgs.add(p); \
            const pj = JSON.parse(fs.readFileSync(path.join(p, "package.json"), "utf8")); \
            for (const d of Object.keys(pj.dependencies ?? {})) need(d, p, false); \
            for (const d of Object.keys(pj.optionalDependencies ?? {})) need(d, p, true); \
            return; \
          } \
          if (dir === path.dirname(dir)) { if (optional) return; throw new Error("the agent imports " + name + ", which is not installed"); } \
        } \
      }; \
      walk(path.resolve("bin/nsdebug-agent.js")); \
      for (const b of bare) need(b, process.cwd(), false); \
      const rel = (p) => path.relative(process.cwd(), p); \
      fs.writeFileSync("/tmp/agent-files", [...files, ...pkgs].map(rel).join("\n") + "\n"); \
      console.log("agent modules:", [...files].length, "files; packages:", [...pkgs].map(rel).join(" ") || "none"); \
    '

# Assemble the runtime's root filesystem in /rootfs.
RUN set -eux; \
    R=/rootfs; \
    mkdir -p $R/app/native $R/usr/local/bin $R/usr/lib/nsdebug $R/bin $R/usr/bin $R/etc $R/tmp $R/run; \
    chmod 1777 $R/tmp; \
    cp package.json $R/app/; \
    xargs -a /tmp/agent-files cp -a --parents -t $R/app; \
    # what never runs in the agent: koffi's C/C++ sources beside its JavaScript in src/ (its
    # binary is the optional package @koromix/koffi-linux-x64, the only platform npm installed),
    # typings, maps, docs
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
    # fail the build here, not in a cluster: every agent module loads in the runtime tree
    chroot $R /usr/bin/env -u NODE_EXTRA_CA_CERTS node --input-type=module -e ' \
      import { readdirSync } from "node:fs"; \
      for (const dir of ["/app/dist/src/agent", "/app/dist/src/native"]) \
        for (const f of readdirSync(dir)) if (f.endsWith(".js") && f !== "main.js") await import(`${dir}/${f}`); \
      const { loadNativeLibrary } = await import("/app/dist/src/native/libnsdebug.js"); \
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
