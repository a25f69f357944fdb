// MemoryRepository plus what a test peer needs and the in-memory repository lacks:
// validation on every write, delete tombstones (410 Gone + a history entry), and real transaction
// rollback (snapshot/restore). All requests are serialised by the HTTP layer, so a snapshot never
// races another request.
//
// MemoryRepository's `resources`, `history` and `seeding` fields and its `createResourceSync`
// method are TypeScript-private but plain JS properties: overriding createResourceSync is the one
// place that sees every write (create, update, patch, conditional create/update, bundle entries).

import { OperationOutcomeError, generateId, gone, notFound } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';
import { checkSearchRequest } from './search.mjs';
import { assertValid } from './validate.mjs';

const key = (resourceType, id) => `${resourceType}/${id}`;

export class TestRepository extends MemoryRepository {
  constructor() {
    super();
    /** "Type/id" -> { versionId, lastUpdated } of the deletion. */
    this.tombstones = new Map();
    /** Append-only change log, oldest first: { resourceType, id, method, versionId, lastUpdated, resource? }. */
    this.changes = [];
  }

  clear() {
    super.clear();
    this.tombstones.clear();
    this.changes.length = 0;
  }

  createResourceSync(resource, options, update = false) {
    if (!this.seeding) {
      assertValid(resource);
    }
    const existed = resource.id !== undefined && this.resources.get(resource.resourceType)?.has(resource.id);
    const result = super.createResourceSync(resource, options, update);
    this.tombstones.delete(key(result.resourceType, result.id));
    this.changes.push({
      resourceType: result.resourceType,
      id: result.id,
      method: update ? 'PUT' : 'POST',
      created: !existed,
      versionId: result.meta.versionId,
      lastUpdated: result.meta.lastUpdated,
      resource: structuredClone(result), // `result` goes to the caller, who may change it
    });
    return result;
  }

  async search(searchRequest) {
    checkSearchRequest(searchRequest);
    return super.search(searchRequest);
  }

  async conditionalCreate(resource, search, options) {
    checkSearchRequest(search);
    return super.conditionalCreate(resource, search, options);
  }

  /** True when the resource exists (not deleted). */
  exists(resourceType, id) {
    return Boolean(this.resources.get(resourceType)?.has(id));
  }

  async readResource(resourceType, id) {
    if (this.tombstones.has(key(resourceType, id))) {
      throw new OperationOutcomeError(gone);
    }
    return super.readResource(resourceType, id);
  }

  async readVersion(resourceType, id, versionId) {
    const change = this.historyOf(resourceType, id).find((c) => c.versionId === versionId);
    if (!change) {
      throw new OperationOutcomeError(notFound);
    }
    if (change.method === 'DELETE') {
      throw new OperationOutcomeError(gone);
    }
    return structuredClone(change.resource);
  }

  async deleteResource(resourceType, id, options) {
    if (this.tombstones.has(key(resourceType, id))) {
      return; // deleting a deleted resource is a no-op (HAPI and SEKMET answer 200 too)
    }
    await super.deleteResource(resourceType, id, options);
    const tombstone = { versionId: generateId(), lastUpdated: new Date().toISOString() };
    this.tombstones.set(key(resourceType, id), tombstone);
    this.changes.push({ resourceType, id, method: 'DELETE', ...tombstone });
  }

  /**
   * Changes newest first, optionally for one type or one resource; [] when none.
   * @returns {Array<object>}
   */
  historyOf(resourceType, id) {
    return this.changes
      .filter((c) => (!resourceType || c.resourceType === resourceType) && (!id || c.id === id))
      .reverse();
  }

  async withTransaction(callback) {
    const snapshot = this.snapshot();
    try {
      return await callback(this);
    } catch (err) {
      this.restore(snapshot);
      throw err;
    }
  }

  // Stored resource objects are never mutated in place (MemoryRepository replaces them and hands
  // out clones), so copying the containers is a complete snapshot.
  snapshot() {
    const copyNested = (outer, copyInner) => new Map([...outer].map(([k, inner]) => [k, copyInner(inner)]));
    return {
      resources: copyNested(this.resources, (m) => new Map(m)),
      history: copyNested(this.history, (m) => new Map([...m].map(([id, versions]) => [id, [...versions]]))),
      tombstones: new Map(this.tombstones),
      changes: this.changes.length,
    };
  }

  restore(snapshot) {
    for (const name of ['resources', 'history', 'tombstones']) {
      this[name].clear();
      for (const [k, v] of snapshot[name]) {
        this[name].set(k, v);
      }
    }
    this.changes.length = snapshot.changes;
  }
}
