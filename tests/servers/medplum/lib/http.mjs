// node:http adapter: URL/base handling, body parsing, one-request-at-a-time execution (so a
// transaction snapshot never races another write), FHIR response headers and bundle links.

import { allOk, getStatus, normalizeOperationOutcome, serverError } from '@medplum/core';
import { capabilityStatement } from './capability.mjs';
import { DEFAULT_COUNT, MAX_COUNT } from './search.mjs';

export const FHIR_BASE = '/fhir/R4';
export const RESET_PATH = '/__admin/reset';
const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const IGNORED_QUERY = new Set(['_format', '_pretty']);

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function outcome(status, code, text) {
  return [status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] }];
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      throw new HttpError(413, 'Request body too large');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(text, contentType) {
  if (!text.trim()) {
    return undefined;
  }
  if (contentType.includes('xml')) {
    throw new HttpError(415, 'This test peer speaks JSON only (application/fhir+json)');
  }
  if (contentType.includes('x-www-form-urlencoded')) {
    return queryObject(new URLSearchParams(text));
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `Invalid JSON body: ${err.message}`);
  }
}

function queryObject(params) {
  const result = {};
  for (const [name, value] of params) {
    if (IGNORED_QUERY.has(name)) {
      continue;
    }
    const existing = result[name];
    result[name] = existing === undefined ? value : [].concat(existing, value);
  }
  return result;
}

function toSearchParams(query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    for (const v of [].concat(value)) {
      params.append(name, v);
    }
  }
  return params;
}

function pageLinks(base, path, query, total) {
  const count = Math.min(Number(query._count ?? DEFAULT_COUNT), MAX_COUNT);
  const offset = Number(query._offset ?? 0);
  const link = (relation, newOffset) => {
    const params = toSearchParams({ ...query, _count: String(count), _offset: String(newOffset) });
    return { relation, url: `${base}/${path}?${params}` };
  };
  const links = [{ relation: 'self', url: `${base}/${path}?${toSearchParams(query)}` }, link('first', 0)];
  if (offset > 0) {
    links.push(link('previous', Math.max(0, offset - count)));
  }
  if (count > 0 && offset + count < total) {
    links.push(link('next', offset + count));
  }
  return links;
}

function fullUrl(base, resource) {
  return resource?.id ? `${base}/${resource.resourceType}/${resource.id}` : undefined;
}

// Adds what a FHIR server puts on bundles and MemoryRepository leaves out.
function decorateBundle(bundle, base, searchPath, query) {
  for (const entry of bundle.entry ?? []) {
    if (!entry) {
      continue;
    }
    const url = entry.resource ? fullUrl(base, entry.resource) : entry.request && `${base}/${entry.request.url}`;
    entry.fullUrl ??= url;
    const meta = entry.resource?.meta;
    if (entry.response && meta?.versionId) {
      entry.response.etag ??= `W/"${meta.versionId}"`;
      entry.response.lastModified ??= meta.lastUpdated;
    }
  }
  if (bundle.type === 'searchset' && searchPath !== undefined) {
    bundle.link = pageLinks(base, searchPath, query, bundle.total ?? 0);
  }
}

function preferReturn(headers) {
  return /return=(minimal|representation|OperationOutcome)/i.exec(headers.prefer ?? '')?.[1];
}

/**
 * @returns {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void}
 */
export function createHandler({ repo, router, log }) {
  const startedAt = new Date().toISOString();
  let tail = Promise.resolve();
  const serialize = (fn) => {
    const run = tail.then(fn);
    tail = run.catch(() => undefined);
    return run;
  };

  async function route(req, url, bodyText) {
    const base = `${url.origin}${FHIR_BASE}`;
    if (url.pathname === RESET_PATH) {
      if (req.method !== 'POST') {
        return outcome(405, 'not-supported', `Use POST ${RESET_PATH}`);
      }
      repo.clear();
      return [204, undefined];
    }
    if (url.pathname !== FHIR_BASE && !url.pathname.startsWith(`${FHIR_BASE}/`)) {
      return outcome(404, 'not-found', `Not found; the FHIR base is ${FHIR_BASE}`);
    }
    const path = url.pathname.slice(FHIR_BASE.length).replace(/^\/+|\/+$/g, '');
    if (req.method === 'GET' && path === 'metadata') {
      return [200, capabilityStatement(base, startedAt)];
    }
    if ((url.searchParams.get('_format') ?? '').includes('xml')) {
      return outcome(406, 'not-supported', 'This test peer speaks JSON only (_format=json)');
    }
    const body = parseBody(bodyText, req.headers['content-type'] ?? '');
    const query = queryObject(url.searchParams);
    const search = toSearchParams(query).toString();
    const [result, resource] = await router.handleRequest(
      {
        method: req.method,
        url: search ? `${path}?${search}` : path,
        pathname: '',
        body,
        params: {},
        query: {},
        headers: req.headers,
        config: { transactions: true },
      },
      repo
    );
    const status = getStatus(result);
    const payload = resource ?? result;
    // Only bundles this server assembled (search, history, batch responses), never a stored Bundle.
    const segments = path.split('/').filter(Boolean);
    const isSearch =
      (req.method === 'GET' && segments.length <= 1 && segments[0] !== '_history') ||
      (req.method === 'POST' && segments.length === 2 && segments[1] === '_search');
    const isHistory = req.method === 'GET' && segments.at(-1) === '_history';
    const isBatch = req.method === 'POST' && segments.length === 0;
    if (payload.resourceType === 'Bundle' && status < 300 && (isSearch || isHistory || isBatch)) {
      const searchQuery = req.method === 'POST' ? (body ?? {}) : query;
      decorateBundle(payload, base, isSearch ? segments[0] ?? '' : undefined, searchQuery);
    }
    return [status, payload, base];
  }

  function send(req, res, status, payload, base) {
    const headers = { 'Content-Type': FHIR_JSON };
    const meta = payload?.meta;
    const isResource = payload && payload.resourceType !== 'OperationOutcome' && meta?.versionId && status < 300;
    if (isResource) {
      headers.ETag = `W/"${meta.versionId}"`;
      headers['Last-Modified'] = new Date(meta.lastUpdated).toUTCString();
      if (status === 201) {
        headers.Location = `${base}/${payload.resourceType}/${payload.id}/_history/${meta.versionId}`;
      }
    }
    let body = payload;
    const prefer = preferReturn(req.headers);
    if (isResource && prefer === 'minimal') {
      body = undefined;
    } else if (isResource && prefer === 'OperationOutcome') {
      body = allOk;
    }
    if (body === undefined) {
      res.writeHead(status, status === 204 ? {} : headers).end();
    } else {
      res.writeHead(status, headers).end(JSON.stringify(body));
    }
  }

  return (req, res) => {
    const started = Date.now();
    let url;
    try {
      url = new URL(req.url, `http://${req.headers.host ?? '127.0.0.1'}`);
    } catch {
      url = new URL(req.url ?? '/', 'http://127.0.0.1');
    }
    readBody(req)
      .then((text) => serialize(() => route(req, url, text)))
      .catch((err) => {
        if (err instanceof HttpError) {
          return outcome(err.status, err.status === 400 ? 'structure' : 'not-supported', err.message);
        }
        const oo = normalizeOperationOutcome(err);
        return [getStatus(oo), oo];
      })
      .then(([status, payload, base]) => {
        send(req, res, status, payload, base ?? `${url.origin}${FHIR_BASE}`);
        log(`${req.method} ${url.pathname}${url.search} -> ${status} (${Date.now() - started} ms)`);
      })
      .catch((err) => {
        log(`${req.method} ${url.pathname} failed: ${err?.stack ?? err}`);
        if (!res.headersSent) {
          res.writeHead(500, { 'Content-Type': FHIR_JSON }).end(JSON.stringify(serverError(err)));
        }
      });
  };
}
