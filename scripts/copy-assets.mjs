// Copies what tsc does not emit into dist/: the preset JSON files, and the web page's sources
// (HTML, CSS and TypeScript, which arpix serve bundles with esbuild when it starts).
import { cpSync, existsSync, readdirSync } from 'node:fs';
for (const family of readdirSync('src/models')) {
  if (existsSync(`src/models/${family}/presets`)) cpSync(`src/models/${family}/presets`, `dist/models/${family}/presets`, { recursive: true });
}
cpSync('src/serve/page', 'dist/serve/page', { recursive: true, filter: (f) => !f.endsWith('tsconfig.json') });
