// Writes schemas/recipe.schema.json from the steps' option schemas (run by `npm run schema`;
// a unit test fails when the checked-in file is out of date).
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
const require = createRequire(import.meta.url);
const { recipeJsonSchema } = require('../out/src/core/transforms/registry.js');
writeFileSync(new URL('../schemas/recipe.schema.json', import.meta.url), `${JSON.stringify(recipeJsonSchema(), null, 2)}\n`);
