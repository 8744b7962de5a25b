// The documentation as a reader follows it: every relative link in README.md,
// CONTRIBUTING.md and docs/ leads to a file (and heading) that exists, and the
// settings table of docs/configuration.md, which `--help` points to, says what
// src/config/config.ts reads, with its default and range. No services needed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.js';

const ROOT = resolve(import.meta.dirname, '..');

/** The markdown files a reader is sent through: README.md, CONTRIBUTING.md and everything under docs/. */
function documents(): string[] {
  const under = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return under(path);
      return entry.name.endsWith('.md') ? [path] : [];
    });
  return [join(ROOT, 'README.md'), join(ROOT, 'CONTRIBUTING.md'), ...under(join(ROOT, 'docs'))];
}

/** The text a reader sees as prose: fenced blocks and inline code hold examples, not links or headings. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, heading] of markdown.replace(/^```[\s\S]*?^```$/gm, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const text = heading!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** Every relative link of a document that leads nowhere, as "file: target (why)". */
function brokenLinks(file: string): string[] {
  const broken: string[] = [];
  for (const [, target] of prose(readFileSync(file, 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z][a-z+.-]*:/i.test(target!)) continue;
    const [path, anchor] = target!.split('#', 2) as [string, string | undefined];
    const linked = path === '' ? file : resolve(dirname(file), path);
    const where = `${relative(ROOT, file)}: ${target}`;
    if (!existsSync(linked)) broken.push(`${where} (no such file)`);
    else if (anchor !== undefined && !headingAnchors(readFileSync(linked, 'utf8')).has(anchor)) broken.push(`${where} (no such heading)`);
  }
  return broken;
}

interface DocumentedSetting {
  name: string;
  default: string;
  range: string;
}

/** The rows of the settings table: `| \`NAME\` | default | range | meaning |`. */
function documentedSettings(): DocumentedSetting[] {
  const doc = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');
  return [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|([^|]*)\|([^|]*)\|/gm)].map((m) => ({
    name: m[1]!,
    default: m[2]!.trim(),
    range: m[3]!.trim(),
  }));
}

const configSource = readFileSync(join(ROOT, 'src/config/config.ts'), 'utf8');

describe('the documentation', () => {
  it('finds the anchors GitHub makes of headings', () => {
    expect([
      ...headingAnchors('# Who changed it: the audit log\n## `status`, and more\n## Tables\n## Tables\n```sh\n# not a heading\n```\n'),
    ]).toEqual(['who-changed-it-the-audit-log', 'status-and-more', 'tables', 'tables-1']);
  });

  it('links only to files and headings that exist', () => {
    const files = documents();
    expect(files.map((f) => relative(ROOT, f))).toEqual(expect.arrayContaining(['README.md', 'CONTRIBUTING.md', 'docs/configuration.md']));
    expect(files.flatMap(brokenLinks)).toEqual([]);
  });

  it('keeps the README short enough to read in five minutes', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length).toBeLessThanOrEqual(200);
  });
});

describe('docs/configuration.md', () => {
  const settings = documentedSettings();
  const documented = new Set(settings.map((s) => s.name));

  it('documents every variable src/config/config.ts reads, and none the code does not read', () => {
    const read = new Set([...configSource.matchAll(/\benv\.([A-Z][A-Z0-9_]+)|\(env, '([A-Z][A-Z0-9_]+)'/g)].map((m) => (m[1] ?? m[2])!));
    expect(read.size).toBeGreaterThan(20);
    expect([...read].filter((name) => !documented.has(name))).toEqual([]);
    const source = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((path) => path.endsWith('.ts'))
      .map((path) => readFileSync(join(ROOT, 'src', path), 'utf8'))
      .join('\n');
    expect(settings.filter((s) => !source.includes(`'${s.name}'`) && !source.includes(`env.${s.name}`)).map((s) => s.name)).toEqual([]);
  });

  /** Settings that only go with others: each is tried with these set too. */
  const COMPANIONS: Record<string, Record<string, string>> = {
    AUDIT_PUSH_PORT: { AUDIT_PUSH_URL: 'https://push.example.com/gcore-audit', AUDIT_PUSH_SECRET: 'x'.repeat(32) },
  };

  it('gives every number setting its range, as the code enforces it', () => {
    const numbers = [...configSource.matchAll(/readInt\(env, '([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]!);
    expect(numbers.filter((name) => !/^\d+–\d+$/.test(settings.find((s) => s.name === name)?.range ?? ''))).toEqual([]);
    for (const { name, range } of settings.filter((s) => s.range !== '')) {
      const [min, max] = range.split('–').map(Number) as [number, number];
      const with_ = COMPANIONS[name] ?? {};
      expect(() => loadConfig({ ...with_, [name]: String(min) }), name).not.toThrow();
      expect(() => loadConfig({ ...with_, [name]: String(max) }), name).not.toThrow();
      for (const outside of [min - 1, max + 1]) {
        expect(() => loadConfig({ ...with_, [name]: String(outside) }), `${name}=${outside}`).toThrow(
          `${name}: must be a whole number from ${min} to ${max}`,
        );
      }
    }
  });

  it('gives the default the code uses where it names one value', () => {
    const unset = loadConfig({});
    const withDefaults = settings.flatMap((s) => {
      const value = /^`([^`]*)`$/.exec(s.default)?.[1];
      return value === undefined ? [] : [{ name: s.name, value }];
    });
    expect(withDefaults.length).toBeGreaterThan(15);
    for (const { name, value } of withDefaults) expect(loadConfig({ [name]: value }), `${name}=${value}`).toEqual(unset);
  });
});
