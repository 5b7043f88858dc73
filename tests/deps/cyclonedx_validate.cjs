// Validates CycloneDX JSON files with the CycloneDX organisation's JavaScript library
// (@cyclonedx/cyclonedx-library, JsonStrictValidator: its bundled schemas on ajv), each
// against the schema of the specVersion it declares. Exit 0 when every file is valid,
// 1 when one is not (its errors printed), 2 when the validator could not run.
// NODE_PATH names the node_modules holding the library and its ajv peers.
'use strict';
const fs = require('fs');
const { Validation } = require('@cyclonedx/cyclonedx-library');

(async () => {
  let failed = 0;
  for (const path of process.argv.slice(2)) {
    const text = fs.readFileSync(path, 'utf8');
    const version = JSON.parse(text).specVersion;
    const errors = await new Validation.JsonStrictValidator(version).validate(text);
    if (errors === null) {
      console.log(`${path}: valid CycloneDX ${version}`);
    } else {
      failed = 1;
      console.log(`${path}: not valid CycloneDX ${version}\n${JSON.stringify(errors, null, 2)}`);
    }
  }
  process.exit(failed);
})().catch((error) => {
  console.error(error);
  process.exit(2);
});
