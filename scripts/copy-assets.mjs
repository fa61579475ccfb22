// Copies what tsc does not emit into dist/: the preset JSON files, and the web page's sources
// (HTML, CSS and TypeScript, which arpix serve bundles with esbuild when it starts).
import { cpSync } from 'node:fs';
cpSync('src/models/presets', 'dist/models/presets', { recursive: true });
cpSync('src/serve/page', 'dist/serve/page', { recursive: true, filter: (f) => !f.endsWith('tsconfig.json') });
