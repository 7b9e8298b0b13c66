import { readFileSync } from 'node:fs';

/** The text of test/fixtures/NAME. */
export const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
