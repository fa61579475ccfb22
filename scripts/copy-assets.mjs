// Copies what tsc does not emit into dist/: the preset JSON files.
import { cpSync } from 'node:fs';
cpSync('src/models/presets', 'dist/models/presets', { recursive: true });
