// Kubernetes' name grammars (DNS-1123), for checking what a user typed before asking the API.

/** DNS-1123 label, at most 63 characters: namespaces, container names. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** DNS-1123 subdomain, at most 253 characters: dot-separated labels, as pod, workload and node names are. */
export const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
