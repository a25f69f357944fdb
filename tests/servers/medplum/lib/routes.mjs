// FhirRouter with the interactions the stock router lacks or answers differently from a FHIR server:
// default paging, strict search, 201 on update-as-create, instance/type/system _history with delete
// entries, and $validate. Bundle entries (batch/transaction) go through the same routes.

import {
  OperationOutcomeError,
  allOk,
  badRequest,
  created,
  isResourceType,
  notFound,
  parseSearchRequest,
} from '@medplum/core';
import { FhirRouter } from '@medplum/fhir-router';
import { normalizeQuery } from './search.mjs';
import { collectIssues } from './validate.mjs';

const STATUS_BY_METHOD = { POST: '201 Created', PUT: '200 OK', DELETE: '204 No Content' };

function requireType(resourceType) {
  if (!isResourceType(resourceType)) {
    const issue = { ...notFound.issue[0], details: { text: `Unknown resource type: ${resourceType}` } };
    throw new OperationOutcomeError({ ...notFound, issue: [issue] });
  }
}

// Routes are matched by score (literal segments) and the first registered wins a tie, so replacing
// a stock route means swapping its handler in place.
function replaceRoute(router, method, path, handler) {
  const wanted = path.split('/').filter(Boolean);
  const route = router.router.routes.find(
    (r) =>
      r.method === method &&
      r.path.length === wanted.length &&
      r.path.every((seg, i) => (seg.param ? `:${seg.value}` : seg.value) === wanted[i])
  );
  if (!route) {
    throw new Error(`FhirRouter has no route ${method} ${path}: @medplum/fhir-router changed`);
  }
  route.handler = handler;
}

async function runSearch(resourceType, query, repo) {
  requireType(resourceType);
  const searchRequest = parseSearchRequest(resourceType, normalizeQuery(resourceType, query));
  return [allOk, await repo.search(searchRequest)];
}

const search = (req, repo) => runSearch(req.params.resourceType, req.query, repo);
const searchByPost = (req, repo) => runSearch(req.params.resourceType, req.body ?? {}, repo);

async function update(req, repo) {
  const { resourceType, id } = req.params;
  requireType(resourceType);
  const resource = req.body;
  if (resource?.resourceType !== resourceType) {
    return [badRequest('Incorrect resource type')];
  }
  if (resource.id !== id) {
    return [badRequest('Resource id in the body does not match the URL')];
  }
  const ifMatch = /"([^"]+)"/.exec(req.headers?.['if-match'] ?? '')?.[1];
  const existed = repo.exists(resourceType, id);
  const result = await repo.updateResource(resource, { ifMatch });
  return [existed ? allOk : created, result];
}

function historyBundle(changes) {
  return {
    resourceType: 'Bundle',
    type: 'history',
    total: changes.length,
    entry: changes.map((c) => ({
      ...(c.resource ? { resource: structuredClone(c.resource) } : {}),
      request: { method: c.method, url: c.method === 'POST' ? c.resourceType : `${c.resourceType}/${c.id}` },
      response: {
        status: c.method === 'PUT' && c.created ? '201 Created' : STATUS_BY_METHOD[c.method],
        etag: `W/"${c.versionId}"`,
        lastModified: c.lastUpdated,
      },
    })),
  };
}

async function instanceHistory(req, repo) {
  const { resourceType, id } = req.params;
  requireType(resourceType);
  const changes = repo.historyOf(resourceType, id);
  if (!changes.length) {
    return [notFound];
  }
  return [allOk, historyBundle(changes)];
}

async function typeHistory(req, repo) {
  requireType(req.params.resourceType);
  return [allOk, historyBundle(repo.historyOf(req.params.resourceType))];
}

async function systemHistory(_req, repo) {
  return [allOk, historyBundle(repo.historyOf())];
}

// $validate accepts the resource itself or a Parameters with a "resource" part (R4
// OperationDefinition Resource-validate). Like Medplum's server it answers 200 + "All OK" or 400 +
// the issues; `mode` and `profile` are ignored (no profiles are loaded).
async function validate(req) {
  let resource = req.body;
  if (resource?.resourceType === 'Parameters' && req.params.resourceType !== 'Parameters') {
    resource = resource.parameter?.find((p) => p.name === 'resource')?.resource;
  }
  if (!resource) {
    return [badRequest('Missing resource to validate')];
  }
  const { resourceType } = req.params;
  if (resourceType && resource.resourceType !== resourceType) {
    return [badRequest(`Expected a ${resourceType}, got ${resource.resourceType}`)];
  }
  const issues = collectIssues(resource);
  if (issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) {
    throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: issues });
  }
  const outcome = { ...allOk, issue: [...allOk.issue, ...issues] };
  return [outcome, outcome];
}

/** @returns {FhirRouter} the router used for every request of the peer. */
export function buildRouter() {
  const router = new FhirRouter();
  replaceRoute(router, 'GET', ':resourceType', search);
  replaceRoute(router, 'POST', ':resourceType/_search', searchByPost);
  replaceRoute(router, 'PUT', ':resourceType/:id', update);
  replaceRoute(router, 'GET', ':resourceType/:id/_history', instanceHistory);
  router.add('GET', ':resourceType/_history', typeHistory, 'history-type');
  router.add('GET', '_history', systemHistory, 'history-system');
  router.add('POST', '$validate', validate);
  router.add('POST', ':resourceType/$validate', validate);
  router.add('POST', ':resourceType/:id/$validate', validate);
  return router;
}
