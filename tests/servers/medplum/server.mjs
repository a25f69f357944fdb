#!/usr/bin/env node
// Test-only FHIR R4 server: Medplum's FhirRouter + an in-memory repository with validation,
// tombstones and transaction rollback. Not for real data. See docs/testing.md.
//
//   node [--experimental-websocket] server.mjs [--host 127.0.0.1] [--port 8103] [--exit-on-stdin-eof] [--quiet]
//
// Node 22+ runs it as is; Node 20/21 needs --experimental-websocket because @medplum/core reads
// WebSocket.CLOSING at import time (Medplum 5.x targets Node ^22.18).

import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8103' },
    'exit-on-stdin-eof': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});

const log = (message) => {
  if (!args.quiet) {
    process.stdout.write(`${new Date().toISOString()} ${message}\n`);
  }
};

if (typeof globalThis.WebSocket === 'undefined') {
  process.stderr.write(
    `medplum-peer: Node ${process.version} has no global WebSocket; ` +
      'run "node --experimental-websocket server.mjs" or use Node >= 22.\n'
  );
  process.exit(2);
}

// Imported after the check above: @medplum/core needs WebSocket while its module initialises.
const { loadDefinitions } = await import('./lib/validate.mjs');
const { TestRepository } = await import('./lib/repository.mjs');
const { buildRouter } = await import('./lib/routes.mjs');
const { createHandler, FHIR_BASE } = await import('./lib/http.mjs');

loadDefinitions();
const repo = new TestRepository();
const server = createServer(createHandler({ repo, router: buildRouter(), log }));
server.keepAliveTimeout = 5000;

function shutdown(reason) {
  log(`stopping (${reason})`);
  server.close();
  server.closeAllConnections();
  process.exit(0);
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (args['exit-on-stdin-eof']) {
  // The test fixture holds the write end of our stdin: if it dies, even by SIGKILL, we get EOF.
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

server.on('error', (err) => {
  process.stderr.write(`medplum-peer: ${err.message}\n`);
  process.exit(1);
});
server.listen(Number(args.port), args.host, () => {
  const { address, port } = server.address();
  // Always printed (even with --quiet): the fixture and humans read the bound port from this line.
  process.stdout.write(`medplum-peer listening on http://${address}:${port}${FHIR_BASE}\n`);
});
