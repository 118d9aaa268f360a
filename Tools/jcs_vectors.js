// Writes Tests/Vectors/jcs.json: `node Tools/jcs_vectors.js > Tests/Vectors/jcs.json`.
// Generates RFC 8785 test vectors with V8 as the reference: JSON.stringify for numbers and
// strings, keys sorted by UTF-16 code units (JavaScript's default sort).
let state = 0x2545F491n;
function next() { state = (state * 6364136223846793005n + 1442695040888963407n) & 0xFFFFFFFFFFFFFFFFn; return state >> 11n; }
function rnd(n) { return Number(next() % BigInt(n)); }
const pieces = ['a', 'b', 'Z', '1', ' ', '"', '\\', '/', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u001f', '\u007f',
  '\u0080', 'é', 'ö', '€', '\u2028', '\ufb33', '\ue000', '\uffff', '😀', '𝄞', '\u{10ffff}', 'ßx', 'key'];
function str() { let s = ''; const n = rnd(6); for (let i = 0; i < n; i++) s += pieces[rnd(pieces.length)]; return s; }
function num() {
  switch (rnd(4)) {
  case 0: return rnd(2000) - 1000;
  case 1: { const b = new DataView(new ArrayBuffer(8)); b.setBigUint64(0, next() << 11n | next() & 0x7FFn);
            const d = b.getFloat64(0); return Number.isFinite(d) ? d : 1.5; }
  case 2: return (rnd(1 << 30) - (1 << 29)) * Math.pow(10, rnd(60) - 30);
  default: return rnd(1 << 30) / (rnd(1000) + 1);
  }
}
function value(depth) {
  const k = depth > 2 ? rnd(4) : rnd(6);
  switch (k) {
  case 0: return num();
  case 1: return str();
  case 2: return [true, false, null][rnd(3)];
  case 3: return num();
  case 4: { const a = []; const n = rnd(4); for (let i = 0; i < n; i++) a.push(value(depth + 1)); return a; }
  default: { const o = {}; const n = rnd(5); for (let i = 0; i < n; i++) o[str()] = value(depth + 1); return o; }
  }
}
function canonical(v) {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
  return '{' + Object.keys(v).sort().map(k => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}';
}
const cases = [];
for (let i = 0; i < 300; i++) { const v = { value: value(0) }; cases.push({ input: JSON.stringify(v), canonical: canonical(v) }); }
process.stdout.write(JSON.stringify({ generator: 'V8 JSON.stringify, keys sorted by UTF-16 code units', cases }, null, 1) + '\n');
