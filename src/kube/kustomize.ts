// The subset of kustomize that renders deploy/: `resources` (files in the directory, in order)
// and the `images` transformer. The installer applies exactly what `kubectl kustomize deploy/`
// renders, so a kustomization.yaml field outside this subset is refused rather than ignored.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { splitImage } from './image-ref.js';

/** One object of a manifest, as its YAML document holds it. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

/** A kustomize `images` entry. */
export interface ImageRule {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

export interface Kustomization {
  resources: string[];
  images: ImageRule[];
}

const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'images']);

export function parseKustomization(doc: unknown): Kustomization {
  if (!doc || typeof doc !== 'object') throw new Error('kustomization.yaml is empty');
  const k = doc as Record<string, unknown>;
  const unknown = Object.keys(k).filter((key) => !KUSTOMIZATION_FIELDS.has(key));
  if (unknown.length)
    throw new Error(`kustomization.yaml uses ${unknown.join(', ')}, which the installer does not apply; use only resources and images`);
  const resources = k.resources ?? [];
  if (!Array.isArray(resources) || !resources.every((r) => typeof r === 'string' && /^[\w.-]+\.ya?ml$/.test(r))) {
    throw new Error('kustomization.yaml resources must be file names in deploy/');
  }
  const images = (k.images ?? []) as ImageRule[];
  if (!Array.isArray(images) || !images.every((i) => typeof i?.name === 'string'))
    throw new Error('kustomization.yaml images need a name each');
  return { resources: resources as string[], images };
}

/** kustomize's images transformer for one reference: a rule matches on the name alone. */
export function applyImageRules(ref: string, rules: ImageRule[]): string {
  const image = splitImage(ref);
  const rule = rules.find((r) => r.name === image.name);
  if (!rule) return ref;
  const name = rule.newName ?? image.name;
  if (rule.digest) return `${name}@${rule.digest}`;
  const tag = rule.newTag ?? image.tag;
  if (rule.newTag) return `${name}:${tag}`;
  return `${name}${tag ? `:${tag}` : ''}${image.digest ? `@${image.digest}` : ''}`;
}

/** `kubectl kustomize dir`: kustomization.yaml, its resources in order, its image rules applied. */
export async function kustomizeBuild(dir: string): Promise<KubeObject[]> {
  const yaml = await import('js-yaml');
  const read = (file: string) => readFileSync(join(dir, file), 'utf8');
  const kustomization = parseKustomization(yaml.load(read('kustomization.yaml')));
  const objects: KubeObject[] = [];
  for (const file of kustomization.resources) {
    for (const doc of yaml.loadAll(read(file))) {
      if (doc === null || doc === undefined) continue;
      const o = doc as KubeObject;
      if (!o.apiVersion || !o.kind || !o.metadata?.name)
        throw new Error(`${file}: every document needs apiVersion, kind and metadata.name`);
      objects.push(o);
    }
  }
  return objects.map((o) => mapPodSpecImages(o, (image) => applyImageRules(image, kustomization.images)));
}

/** A copy of o with map applied to the image of every container of its pod template. */
export function mapPodSpecImages(o: KubeObject, map: (image: string) => string): KubeObject {
  const copy = structuredClone(o);
  const podSpec = (copy.spec as { template?: { spec?: Record<string, unknown> } } | undefined)?.template?.spec;
  for (const list of ['initContainers', 'containers'] as const) {
    for (const c of (podSpec?.[list] as Array<{ image?: string }> | undefined) ?? []) if (c.image) c.image = map(c.image);
  }
  return copy;
}
