// flight-risk: raises "Job search" once a user has visited `threshold` different job sites in one
// day — a common early sign that someone is about to leave (and perhaps take data along).
//
// A JavaScript plugin, made a component by componentize-js (see build.mjs). The exports follow
// wit/vigilo-alarms.wit in camelCase; a `result` error is thrown as a string; `list<u8>` is a
// Uint8Array. What a plugin remembers goes in the host's state, so it survives agent restarts.
import { log, stateGet, stateSet } from 'vigilo:alarms/host@0.2.0';

let threshold = 3;
let sites = ['linkedin.com', 'indeed.com', 'glassdoor.com', 'monster.com', 'stepstone.de',
  'welcometothejungle.com', 'hired.com', 'ziprecruiter.com'];

export function describe() {
  return {
    name: 'flight-risk',
    version: '1.0.0',
    subscribes: ['activity'],
    // The fields onEvent reads: the agent copies only these into the plugin.
    reads: ['primary-domain', 'username'],
    configHelp: 'threshold = 3                          # different job sites in one day\n' +
      'sites = ["linkedin.com", "indeed.com", ...]  # registrable domains of job sites',
  };
}

// The configuration is a small TOML subset whose values are JSON (numbers, lists of strings).
export function configure(text) {
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq).trim();
    let value;
    try {
      if (eq < 0) throw new Error();
      value = JSON.parse(line.slice(eq + 1).trim());
    } catch {
      throw `line ${i + 1}: expected \`key = value\`, found \`${line}\``;
    }
    if (key === 'threshold') {
      if (!Number.isInteger(value) || value < 1 || value > 100) {
        throw `line ${i + 1}: \`threshold\` must be a whole number from 1 to 100`;
      }
      threshold = value;
    } else if (key === 'sites') {
      if (!Array.isArray(value) || value.length === 0 || !value.every((s) => typeof s === 'string')) {
        throw `line ${i + 1}: \`sites\` must be a list of domains, like ["linkedin.com"]`;
      }
      sites = value.map((s) => s.toLowerCase());
    } else {
      throw `line ${i + 1}: unknown key \`${key}\`: expected \`threshold\` or \`sites\``;
    }
  });
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

// An event's field (a name of the contract's `field` enum), or undefined when it has none. The
// agent sends only the fields named in `reads`, as a list of { field, value: { tag, val } }.
const field = (event, name) => event.fields.find((f) => f.field === name)?.value.val;

export function onEvent(event) {
  const domain = (field(event, 'primary-domain') ?? '').toLowerCase();
  const username = field(event, 'username');
  if (!username || !sites.includes(domain)) return [];

  // One record per user per (UTC) day: the job sites seen, and whether the alarm was raised.
  const day = new Date(Number(event.tsMs)).toISOString().slice(0, 10);
  const key = `${day}/${username}`;
  const saved = stateGet(key);
  const seen = saved ? JSON.parse(fromUtf8.decode(saved)) : { sites: [], raised: false };
  if (seen.sites.includes(domain)) return [];
  seen.sites.push(domain);
  const raise = !seen.raised && seen.sites.length >= threshold;
  seen.raised ||= raise;
  try {
    stateSet(key, utf8.encode(JSON.stringify(seen)));
  } catch (full) {
    log('warn', `cannot remember ${key}: ${full}`);
  }
  if (!raise) return [];
  log('info', `${username}: ${seen.sites.length} job sites on ${day}`);
  return [{
    alarm: 'Job search',
    risk: 4,
    actions: [{ tag: 'screenshot', val: { count: 1, intervalMs: 10000 } }],
    note: `${username} visited ${seen.sites.join(', ')} on ${day}`,
  }];
}
