// CapabilityStatement for GET /metadata (the FhirRouter serves none). Built from the indexed R4
// schema, so it lists exactly the resource types and search parameters the peer understands.

import { globalSchema, isResourceType } from '@medplum/core';

const VALIDATE = { name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' };
const INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create',
  'search-type'].map((code) => ({ code }));

// Types the in-memory matcher can evaluate; number/quantity/composite/special always match nothing there.
export const SUPPORTED_SEARCH_TYPES = new Set(['token', 'reference', 'string', 'uri', 'date']);

function searchParams(resourceType) {
  const params = globalSchema.types[resourceType]?.searchParams ?? {};
  return Object.entries(params)
    .filter(([code, sp]) => SUPPORTED_SEARCH_TYPES.has(sp.type) && !code.startsWith('_project'))
    .map(([code, sp]) => ({ name: code, definition: sp.url, type: sp.type }));
}

/** @returns {object} an R4 CapabilityStatement for this peer. */
export function capabilityStatement(baseUrl, startedAt) {
  const types = Object.keys(globalSchema.types)
    .filter((t) => isResourceType(t) && !['Resource', 'DomainResource'].includes(t))
    .sort();
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: startedAt,
    publisher: 'bh-fhir-adapter tests',
    kind: 'instance',
    software: { name: 'bh-fhir-adapter Medplum test peer (@medplum/fhir-router MemoryRepository)' },
    implementation: { description: 'Test-only in-memory FHIR R4 server', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        resource: types.map((type) => ({
          type,
          interaction: INTERACTIONS,
          versioning: 'versioned',
          readHistory: true,
          updateCreate: true,
          conditionalCreate: true,
          conditionalUpdate: true,
          conditionalDelete: 'single',
          searchInclude: ['*'],
          searchRevInclude: ['*'],
          searchParam: searchParams(type),
          operation: [VALIDATE],
        })),
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }],
        operation: [VALIDATE],
      },
    ],
  };
}
