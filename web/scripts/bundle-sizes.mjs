// Gzipped bytes each entry loads before anything happens (its HTML's scripts, module
// preloads and stylesheets), for docs/benchmarks.md. `node scripts/bundle-sizes.mjs` after
// `npm run build`; with --old, the same for the plain pages still in web/*.html.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const gz = (path) => gzipSync(readFileSync(path), { level: 9 }).length;
const kb = (n) => (n / 1024).toFixed(1);

function built() {
  const dist = join(web, 'dist');
  for (const f of readdirSync(dist).filter((x) => x.endsWith('.html')).sort()) {
    const html = readFileSync(join(dist, f), 'utf8');
    const refs = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
    let js = 0;
    let css = 0;
    for (const r of new Set(refs)) {
      const n = gz(join(dist, r));
      if (r.endsWith('.js')) js += n;
      else css += n;
    }
    console.log(`${f.padEnd(16)} js ${kb(js).padStart(7)} KB gz   css ${kb(css).padStart(5)} KB gz   (${refs.length} files)`);
  }
}

/** The plain pages: the vendored socket.io client and the ES modules they import. */
function old() {
  for (const f of ['taxpayer.html', 'agent.html', 'supervisor.html']) {
    const path = join(web, f);
    if (!existsSync(path)) continue;
    const html = readFileSync(path, 'utf8');
    const seen = new Set();
    let js = gz(join(web, 'node_modules/socket.io-client/dist/socket.io.min.js'));
    const visit = (mod) => {
      if (seen.has(mod)) return;
      seen.add(mod);
      const src = readFileSync(join(web, 'js', mod), 'utf8');
      js += gzipSync(src, { level: 9 }).length;
      for (const m of src.matchAll(/from '\.\/([^']+)'/g)) visit(m[1]);
    };
    for (const m of html.matchAll(/\/static\/js\/([^"]+)"/g)) visit(m[1]);
    const css = gz(join(web, 'css/app.css'));
    console.log(`old ${f.padEnd(12)} js ${kb(js).padStart(7)} KB gz   css ${kb(css).padStart(5)} KB gz   (${seen.size + 1} files)`);
  }
}

if (process.argv.includes('--old')) old();
else built();
