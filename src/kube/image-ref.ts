// Image references as kustomize and the registries read them: name, then :tag and/or @digest.
// The grammar is distribution/reference's: [domain[:port]/]path[:tag][@digest], where the first
// component is a domain only if it has a dot or a port, or is localhost.

const IMAGE_DOMAIN = /^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]+)?$/;
const IMAGE_PATH_COMPONENT = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$/;
const IMAGE_TAG = /^\w[\w.-]{0,127}$/;
const IMAGE_DIGEST = /^sha256:[0-9a-f]{64}$/;

/** An image reference split as kustomize does: name, then :tag and/or @digest. */
export function splitImage(ref: string): { name: string; tag?: string; digest?: string } {
  const at = ref.indexOf('@');
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  const rest = at >= 0 ? ref.slice(0, at) : ref;
  const colon = rest.lastIndexOf(':');
  // a colon before the last slash belongs to a registry port (localhost:5000/agent)
  const hasTag = colon > rest.lastIndexOf('/');
  return { name: hasTag ? rest.slice(0, colon) : rest, ...(hasTag ? { tag: rest.slice(colon + 1) } : {}), ...(digest ? { digest } : {}) };
}

/** Whether ref is an image reference a node's runtime could pull. */
export function isImageReference(ref: string): boolean {
  const { name, tag, digest } = splitImage(ref);
  const parts = name.split('/');
  const domain = parts.length > 1 && (/[.:]/.test(parts[0] as string) || parts[0] === 'localhost') ? parts.shift() : undefined;
  return (
    ref.length <= 512 &&
    (!domain || IMAGE_DOMAIN.test(domain)) &&
    parts.every((p) => IMAGE_PATH_COMPONENT.test(p)) &&
    (tag === undefined || IMAGE_TAG.test(tag)) &&
    (digest === undefined || IMAGE_DIGEST.test(digest)) &&
    !ref.endsWith('@')
  );
}
