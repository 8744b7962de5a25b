// An image's timeline (/ui/images/{project}/{region}/{id}): its state now, its
// tags and users, each version with the changes that made it and who made them,
// a diff between any two versions, each version's stored state, the raw document.
import { diffSnapshots } from '../../images/image-diff.js';
import type { Triple } from '../../interfaces.js';
import {
  imageActions,
  imageDetail,
  imageTags,
  imageUsage,
  imageVersions,
  rawDocument,
  versionChanges,
  versionStates,
  type ActionRow,
  type ChangeRow,
  type ImageDetail,
  type TagRow,
  type UsageState,
  type VersionRow,
} from '../../sql/uiImage.js';
import { html, type Html } from '../html.js';
import { actor, facts, imagePath, jsonText, table, when, withQuery, type Page } from '../layout.js';
import { NotFoundError, UiInputError } from '../page-errors.js';
import type { PageRequest } from '../page-request.js';

const VERSIONS_PER_PAGE = 50;
const ACTIONS_SHOWN = 20;

/** The triple the path names; its numbers checked as the query's are. */
function tripleOf(parts: string[]): Triple {
  const [project, region, imageId] = parts;
  const number = (text: string, name: string) => {
    if (!/^\d{1,10}$/.test(text) || Number(text) > 2_147_483_647)
      throw new UiInputError(`${name} in the path: must be a whole number from 0 to 2147483647 (got "${text.slice(0, 40)}")`);
    return Number(text);
  };
  if (!imageId) throw new UiInputError('the path must name /ui/images/{project_id}/{region_id}/{image_id}');
  return { projectId: number(project!, 'project_id'), regionId: number(region!, 'region_id'), imageId };
}

const asRow = (t: Triple) => ({ project_id: t.projectId, region_id: t.regionId, image_id: t.imageId });

function notStored(t: Triple): NotFoundError {
  return new NotFoundError(`No image ${t.imageId} of project ${t.projectId}, region ${t.regionId} is stored.`);
}

function versionLabel(version: VersionRow, versions: VersionRow[]): string {
  const number = versions.length - versions.indexOf(version);
  return `version ${number} (#${version.id}), ${when(version.valid_from)}${version.valid_to === null ? ', current' : ''}`;
}

function changeRow(change: ChangeRow, image: Triple): Html {
  const stateLink = html`<a href="${imagePath(asRow(image), `/versions/${change.version_id}`)}">the stored state</a>`;
  const what: Record<string, Html> = {
    created: html`<td colspan="3">first seen; ${stateLink}</td>`,
    deleted: html`<td colspan="3">deleted (confirmed by the API)</td>`,
    restored: html`<td colspan="3">seen again after its deletion; ${stateLink}</td>`,
  };
  const cells =
    change.change_type === 'updated'
      ? html`<td class="field">${change.field}</td>
          <td class="old">${jsonText(change.old_value)}</td>
          <td class="new">${jsonText(change.new_value)}</td>`
      : (what[change.change_type] ?? html`<td colspan="3">${change.change_type}</td>`);
  return html`<tr class="change">
    ${cells}
    <td>${actor(change)}</td>
    <td>${when(change.changed_at)}</td>
  </tr>`;
}

function diffForm(image: Triple, versions: VersionRow[], a?: number, b?: number): Html {
  const options = (selected: number | undefined) =>
    versions.map((v) => html`<option value="${v.id}" ${v.id === selected ? html` selected` : ''}>${versionLabel(v, versions)}</option>`);
  return html`<form class="filters" method="get" action="${imagePath(asRow(image), '/diff')}">
    <label
      >from<select name="a">
        ${options(a ?? versions[1]?.id ?? versions[0]?.id)}
      </select></label
    >
    <label
      >to<select name="b">
        ${options(b ?? versions[0]?.id)}
      </select></label
    >
    <button type="submit">Compare</button>
  </form>`;
}

function summary(image: ImageDetail): Html {
  return facts([
    ['id', image.image_id],
    ['project / region', `${image.project_id} / ${image.region_id}${image.region ? ` (${image.region})` : ''}`],
    ['kind', image.kind],
    ['account', image.account],
    ['status', image.deleted_at ? html`<strong>deleted</strong> ${when(image.deleted_at)}` : image.status],
    ['whose', image.owned ? "the project's own" : image.visibility],
    ['OS', [image.os_distro, image.os_version, image.os_type].filter(Boolean).join(' ') || null],
    ['disk format, min disk, min RAM', `${image.disk_format}, ${image.min_disk} GiB, ${image.min_ram} MiB`],
    ['size', image.size === null ? null : `${image.size.toLocaleString('en')} bytes`],
    ['architecture', image.architecture],
    ['description', image.description],
    ['created, updated (the API)', `${when(image.created_at)}, ${when(image.updated_at)}`],
    ['first seen, last seen', `${when(image.first_seen_at)}, ${when(image.last_seen_at)}`],
    ['last changed', when(image.last_changed_at)],
  ]);
}

function tagsSection(tags: TagRow[]): Html {
  if (tags.length === 0) return html`<p class="muted">No tags.</p>`;
  return table(
    'tags',
    ['key', 'value', 'read-only'],
    tags.map((t) => [t.key, t.value, t.read_only ? 'yes' : 'no']),
  );
}

function usageSection(usage: UsageState): Html {
  const known = html`<p>
    ${usage.usage_status ?? 'unknown'}${usage.usage_unknown_because ? html` <span class="muted">(${usage.usage_unknown_because})</span>` : ''}${usage.unused_since ? html`, unused since ${when(usage.unused_since)}` : ''}
  </p>`;
  if (usage.consumers.length === 0) return known;
  const rows = usage.consumers.map((c) => [c.consumer_kind, c.consumer_id, c.consumer_name, when(c.valid_from)]);
  return html`${known}${table('usage', ['what', 'id', 'name', 'since'], rows)}`;
}

function versionSection(image: Triple, version: VersionRow, versions: VersionRow[], changes: ChangeRow[]): Html {
  return html`<section class="version" id="v${version.id}">
    <h3>
      <a href="${imagePath(asRow(image), `/versions/${version.id}`)}">${versionLabel(version, versions)}</a>
      ${version.valid_to ? html`<span class="muted">until ${when(version.valid_to)}</span>` : ''}
    </h3>
    <table class="changes">
      <thead>
        <tr>
          <th>field</th>
          <th>old</th>
          <th>new</th>
          <th>who</th>
          <th>seen at</th>
        </tr>
      </thead>
      <tbody>
        ${changes.map((change) => changeRow(change, image))}
      </tbody>
    </table>
  </section>`;
}

function actionsSection(actions: ActionRow[]): Html {
  if (actions.length === 0) return html`<p class="muted">None stored.</p>`;
  const rows = actions.map((a) => [
    when(a.acted_at),
    `${a.api_group ?? ''} ${a.action_type ?? ''}`,
    a.email ?? (a.user_id ? `user ${a.user_id}` : null),
    a.source_user_ip,
    `${a.action_id}${a.is_complete === false ? ' (incomplete)' : ''}`,
  ]);
  return table('actions', ['at', 'action', 'who', 'from', 'entry'], rows);
}

/** What the timeline shows: a page of versions (newest first, `before` a version's id for older ones) and the rest. */
async function readTimeline(read: PageRequest['read'], image: Triple, before: number | undefined) {
  return read(async (tx) => {
    const detail = await imageDetail(tx, image);
    if (!detail) return undefined;
    const versions = await imageVersions(tx, image);
    const start = before === undefined ? 0 : versions.findIndex((v) => v.id === before) + 1;
    if (start === 0 && before !== undefined) throw new UiInputError(`before: ${before} is not a version of this image`);
    const shown = versions.slice(start, start + VERSIONS_PER_PAGE);
    const changes = await versionChanges(
      tx,
      image,
      shown.map((v) => v.id),
    );
    return {
      detail,
      versions,
      shown,
      more: versions[start + VERSIONS_PER_PAGE] !== undefined,
      byVersion: Map.groupBy(changes, (change) => change.version_id),
      tags: await imageTags(tx, image),
      usage: await imageUsage(tx, image),
      actions: await imageActions(tx, image, ACTIONS_SHOWN),
    };
  });
}

export async function imagePage({ parts, query, read }: PageRequest): Promise<Page> {
  const image = tripleOf(parts);
  const before = query.integer('before', 1, Number.MAX_SAFE_INTEGER);
  const data = await readTimeline(read, image, before);
  if (!data) throw notStored(image);
  const { detail, versions, shown } = data;
  const path = imagePath(asRow(image));
  const older = data.more ? html`<a id="older" href="${withQuery(path, { before: shown.at(-1)!.id })}">older versions</a>` : '';
  const body = html`${summary(detail)}
    <p><a href="${imagePath(asRow(image), '/raw')}">The document the API answered last</a> (as received)</p>
    <h2>Tags</h2>
    ${tagsSection(data.tags)}
    <h2>Used by</h2>
    ${usageSection(data.usage)}
    <h2>Compare two versions</h2>
    ${versions.length < 2 ? html`<p class="muted">One version so far.</p>` : diffForm(image, versions)}
    <h2>Versions (${versions.length.toLocaleString('en')}, newest first)</h2>
    ${shown.map((version) => versionSection(image, version, versions, data.byVersion.get(version.id) ?? []))}
    <p class="pager">${before !== undefined ? html`<a href="${path}">newest versions</a>` : ''} ${older}</p>
    <h2>Audit-log entries about it (latest ${ACTIONS_SHOWN})</h2>
    ${actionsSection(data.actions)}`;
  return { title: detail.name, body };
}

export async function diffPage({ parts, query, read }: PageRequest): Promise<Page> {
  const image = tripleOf(parts);
  const a = query.integer('a', 1, Number.MAX_SAFE_INTEGER);
  const b = query.integer('b', 1, Number.MAX_SAFE_INTEGER);
  if (a === undefined || b === undefined) throw new UiInputError('a and b: give the two versions to compare (their ids)');
  const data = await read(async (tx) => {
    const detail = await imageDetail(tx, image);
    if (!detail) return undefined;
    return { detail, versions: await imageVersions(tx, image), states: await versionStates(tx, image, [a, b]) };
  });
  if (!data) throw notStored(image);
  const [from, to] = [data.states.get(a), data.states.get(b)];
  const missing = [from ? undefined : a, to ? undefined : b].filter((id) => id !== undefined);
  if (missing.length > 0) throw new NotFoundError(`Version ${missing.join(' and ')} is not a version of this image.`);
  const changes = diffSnapshots(from!.state, to!.state);
  const label = (id: number) =>
    versionLabel(
      data.versions.find((v) => v.id === id)!,
      data.versions,
    );
  const body = html`<p><a href="${imagePath(asRow(image))}">${data.detail.name}</a>: ${label(a)} → ${label(b)}</p>
    ${diffForm(image, data.versions, a, b)}
    ${
      changes.length === 0
        ? html`<p id="no-difference">The two states are the same.</p>`
        : html`<table id="diff">
            <thead>
              <tr>
                <th>field</th>
                <th>${label(a)}</th>
                <th>${label(b)}</th>
              </tr>
            </thead>
            <tbody>
              ${changes.map(
                (c) =>
                  html`<tr>
                    <td class="field">${c.field}</td>
                    <td class="old">${jsonText(c.oldValue)}</td>
                    <td class="new">${jsonText(c.newValue)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }`;
  return { title: `Difference: ${data.detail.name}`, body };
}

export async function versionPage({ parts, read }: PageRequest): Promise<Page> {
  const image = tripleOf(parts.slice(0, 3));
  const id = Number(parts[3]);
  if (!/^\d{1,15}$/.test(parts[3]!) || id < 1)
    throw new UiInputError(`the version in the path: must be a version's id (got "${parts[3]!.slice(0, 40)}")`);
  const data = await read(async (tx) => {
    const detail = await imageDetail(tx, image);
    if (!detail) return undefined;
    return { detail, versions: await imageVersions(tx, image), states: await versionStates(tx, image, [id]) };
  });
  if (!data) throw notStored(image);
  const state = data.states.get(id);
  if (!state) throw new NotFoundError(`Version ${id} is not a version of this image.`);
  const version = data.versions.find((v) => v.id === id)!;
  const body = html`<p>
      <a href="${imagePath(asRow(image))}">${data.detail.name}</a>:
      ${versionLabel(version, data.versions)}${version.valid_to ? `, until ${when(version.valid_to)}` : ''}
    </p>
    <p class="muted">
      The state as stored: normalized (dates in UTC, tags as key: {value, read_only}); the raw document is kept for the current version
      only.
    </p>
    <pre class="json" id="state">${state.text}</pre>`;
  return { title: `Stored state: ${data.detail.name}`, body };
}

export async function rawPage({ parts, read }: PageRequest): Promise<Page> {
  const image = tripleOf(parts);
  const data = await read(async (tx) => ({ detail: await imageDetail(tx, image), raw: await rawDocument(tx, image) }));
  if (!data.detail) throw notStored(image);
  const body = html`<p><a href="${imagePath(asRow(image))}">${data.detail.name}</a>: the document the API answered last, as received</p>
    <pre class="json" id="raw">${data.raw ?? ''}</pre>`;
  return { title: `Raw document: ${data.detail.name}`, body };
}
