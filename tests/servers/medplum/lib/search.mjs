// Search strictness for the test peer. MemoryRepository silently matches nothing for an unknown
// parameter, an unsupported parameter type or modifier; a test peer should say so (HAPI answers 400
// for unknown parameters too), or a typo in the adapter would look like "no data".

import { OperationOutcomeError, badRequest, globalSchema, isResourceType } from '@medplum/core';
import { SUPPORTED_SEARCH_TYPES } from './capability.mjs';

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;

// Operators the in-memory matcher really implements, per parameter type (@medplum/core search/match.ts).
const SUPPORTED_OPERATORS = {
  token: ['eq', 'ne', 'not', 'missing', 'present'],
  reference: ['eq', 'ne', 'not', 'missing', 'present'],
  string: ['eq', 'contains', 'exact', 'missing', 'present'],
  uri: ['eq', 'missing', 'present'],
  date: ['eq', 'ne', 'lt', 'gt', 'le', 'ge', 'sa', 'eb', 'ap', 'missing', 'present'],
};

function searchParam(resourceType, code) {
  return globalSchema.types[resourceType]?.searchParams?.[code];
}

/**
 * Rewrites `param:Type=id` to `param=Type/id`: parseSearchRequest drops a resource-type modifier,
 * after which an id without a type matches nothing for multi-target parameters such as subject.
 * Also applies the default page size.
 * @returns {Record<string, string | string[]>} a new query object.
 */
export function normalizeQuery(resourceType, query) {
  const result = {};
  for (const [name, value] of Object.entries(query ?? {})) {
    const [code, modifier] = name.split(':');
    const sp = searchParam(resourceType, code);
    if (modifier && sp?.type === 'reference' && isResourceType(modifier) && !name.includes('.')) {
      const qualify = (part) => (part.includes('/') ? part : `${modifier}/${part}`);
      const prefix = (v) => v.split(',').map(qualify).join(',');
      result[code] = Array.isArray(value) ? value.map(prefix) : prefix(value);
    } else {
      result[name] = value;
    }
  }
  result._count ??= String(DEFAULT_COUNT);
  if (Number(result._count) > MAX_COUNT) {
    result._count = String(MAX_COUNT);
  }
  return result;
}

function reject(message) {
  throw new OperationOutcomeError(badRequest(message));
}

/** Throws 400 for a search the in-memory repository would silently answer wrongly. */
export function checkSearchRequest(searchRequest) {
  const { resourceType } = searchRequest;
  for (const filter of searchRequest.filters ?? []) {
    const { code, operator } = filter;
    if (code === '_has' || code.startsWith('_has:')) {
      reject('Search parameter _has is not supported by this test peer');
    }
    const chained = code.indexOf('.');
    const base = chained < 0 ? code : code.slice(0, chained).split(':')[0];
    const sp = searchParam(resourceType, base);
    if (!sp) {
      reject(`Unknown search parameter "${base}" for resource type ${resourceType}`);
    }
    if (chained >= 0) {
      if (sp.type !== 'reference') {
        reject(`Search parameter "${base}" is not a reference and cannot be chained`);
      }
      continue;
    }
    if (!SUPPORTED_SEARCH_TYPES.has(sp.type)) {
      reject(`Search parameter "${code}" has type ${sp.type}, which this test peer cannot evaluate`);
    }
    if (!SUPPORTED_OPERATORS[sp.type].includes(operator)) {
      reject(`Search parameter "${code}" (${sp.type}) does not support the modifier or prefix "${operator}" here`);
    }
  }
}
