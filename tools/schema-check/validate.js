#!/usr/bin/env node
/*
 * validate.js: checks CycloneDX 1.5 JSON documents against the official
 * schema shipped in @cyclonedx/cyclonedx-library (res/schema/).
 *
 *   node tools/schema-check/validate.js FILE...
 *
 * Prints "FILE: valid" or the schema errors for each file; exits 0 when
 * every file is valid, 1 when any is invalid or unreadable, 2 on usage
 * error. Works offline: the schema and its companions (spdx, jsf-0.82) are
 * read from node_modules and registered under the ids the bom schema's
 * relative $refs resolve to (http://cyclonedx.org/schema/…SNAPSHOT.schema.json),
 * so nothing is fetched. Options mirror the library's own ajv validator:
 * strict off, formats from ajv-formats, iri-reference accepted as is.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');

const SCHEMA_DIR = path.join(path.dirname(
    require.resolve('@cyclonedx/cyclonedx-library/package.json')),
    'res', 'schema');
const BASE = 'http://cyclonedx.org/schema/';

function load(name) {
  return JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, name), 'utf-8'));
}

function main(argv) {
  if (argv.length === 0) {
    process.stderr.write('usage: validate.js FILE...\n');
    return 2;
  }
  const companions = {};
  for (const name of ['spdx.SNAPSHOT.schema.json',
                      'jsf-0.82.SNAPSHOT.schema.json'])
    companions[BASE + name] = load(name);

  const ajv = new Ajv({
    strict: false,
    strictSchema: false,
    useDefaults: false,
    addUsedSchema: false,
    allErrors: true,
    schemas: companions,
    loadSchema: (uri) => { throw new Error(`remote schema refused: ${uri}`); },
  });
  addFormats(ajv);
  ajv.addFormat('iri-reference', true);
  /* ajv-formats lacks idn-email; the library uses ajv-formats-draft2019.
   * A permissive check is enough: sbomd emits no e-mail addresses. */
  ajv.addFormat('idn-email', /^[^\s@]+@[^\s@]+$/u);
  const validate = ajv.compile(load('bom-1.5.SNAPSHOT.schema.json'));

  let bad = 0;
  for (const file of argv) {
    let doc;
    try {
      doc = JSON.parse(fs.readFileSync(file, 'utf-8'));
    } catch (e) {
      process.stdout.write(`${file}: unreadable: ${e.message}\n`);
      bad++;
      continue;
    }
    if (validate(doc)) {
      process.stdout.write(`${file}: valid\n`);
      continue;
    }
    bad++;
    process.stdout.write(`${file}: INVALID\n`);
    for (const err of validate.errors) {
      let params = JSON.stringify(err.params);
      if (params.length > 200)  /* e.g. the whole SPDX id enum */
        params = params.slice(0, 200) + '...';
      process.stdout.write(`  ${err.instancePath || '/'}: ${err.message}` +
          ` (${params})\n`);
    }
  }
  return bad === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
