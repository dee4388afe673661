// natsjs_bench: one benchmark case with the official nats.js Object Store client (@nats-io/obj).
//
// Usage:  node scripts/bench/natsjs_bench.mjs '<json request>'
//
// The request has "op" and "url"; the answer is one JSON line on stdout, like
// scripts/bench/pyworker.py: {"ok": true, "elapsed": s, "bytes": n, "ops": k, "hwm_kib": ...,
// "base_kib": ..., "cpu_s": ..., "sha": ..., "batched": ...} or {"ok": false, "error": "..."}.
// Only the operation itself is timed (not node's start, connecting or creating the bucket).
//
// Configuration (reported back in every answer):
//   sha      "native" -> setSha256Backend("native"): node:crypto's createHash("sha256");
//            "js"     -> the package default, the pure-JS js-sha256.
//   batched  true     -> the bucket is created with the opt-in { allowBatched: true }, so put()
//            publishes its chunks as a JetStream fast-ingest batch (server api level >= 4)
//            instead of awaiting each chunk's ack.
//
// Ops:
//   put    bucket, name, path, sha, batched, read_chunk   os.put({name}, ReadableStream of file)
//   get    bucket, name, sha, sink ("null" | "file"), out  os.get(name), stream read to the end
//   small  bucket, count, size, sha, batched              count putBlob, then count getBlob
//
// The packages are the ones installed in tests/support/natsjs (override with NATSJS_DIR).

import { createReadStream, openSync, readFileSync, writeSync, closeSync } from "node:fs";
import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { performance } from "node:perf_hooks";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const natsjsDir = process.env.NATSJS_DIR ?? path.resolve(here, "../../tests/support/natsjs");
const require = createRequire(path.join(natsjsDir, "package.json"));
const { connect } = require("@nats-io/transport-node");
const { Objm, setSha256Backend, getSha256Backend } = require("@nats-io/obj");
const objVersion = JSON.parse(
  readFileSync(path.join(natsjsDir, "node_modules/@nats-io/obj/package.json"), "utf8"),
).version;

function procStatusKib(field) {
  try {
    for (const line of readFileSync("/proc/self/status", "ascii").split("\n")) {
      if (line.startsWith(field + ":")) {
        return parseInt(line.split(/\s+/)[1], 10);
      }
    }
  } catch {
    // no /proc
  }
  return 0;
}

async function timed(work, ops, name) {
  const base = procStatusKib("VmRSS");
  const cpu = process.cpuUsage();
  const start = performance.now();
  const done = await work();
  const elapsed = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return {
    ok: true,
    elapsed,
    bytes: done,
    ops,
    base_kib: base,
    hwm_kib: procStatusKib("VmHWM"),
    cpu_s: (used.user + used.system) / 1e6,
    case: name,
  };
}

async function drain(stream, sink) {
  const reader = stream.getReader();
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      return total;
    }
    if (sink !== null) {
      writeSync(sink, value);
    }
    total += value.length;
  }
}

async function put(nc, req) {
  const objm = new Objm(nc);
  const os = await objm.create(req.bucket, { allowBatched: req.batched === true });
  const readChunk = req.read_chunk ?? 1024 * 1024;
  return await timed(async () => {
    const source = Readable.toWeb(createReadStream(req.path, { highWaterMark: readChunk }));
    const info = await os.put({ name: req.name }, source);
    return info.size;
  }, 1, "natsjs_put");
}

async function get(nc, req) {
  const objm = new Objm(nc);
  const os = await objm.open(req.bucket);
  const sink = req.sink === "file" ? openSync(req.out, "w") : null;
  try {
    return await timed(async () => {
      const result = await os.get(req.name);
      if (result === null) {
        throw new Error(`${req.bucket}/${req.name} not found`);
      }
      const total = await drain(result.data, sink);
      const failure = await result.error; // the digest check: rejects on a mismatch
      if (failure) {
        throw failure;
      }
      return total;
    }, 1, "natsjs_get");
  } finally {
    if (sink !== null) {
      closeSync(sink);
    }
  }
}

async function small(nc, req) {
  const objm = new Objm(nc);
  const os = await objm.create(req.bucket, { allowBatched: req.batched === true });
  const { count, size } = req;
  const blob = randomBytes(count * size);
  const payloads = [];
  for (let i = 0; i < count; i++) {
    payloads.push(new Uint8Array(blob.buffer, blob.byteOffset + i * size, size));
  }
  const got = [];
  const putAnswer = await timed(async () => {
    for (let i = 0; i < count; i++) {
      await os.putBlob({ name: `small/${i}` }, payloads[i]);
    }
    return count * size;
  }, count, "natsjs_small_put");
  const getAnswer = await timed(async () => {
    for (let i = 0; i < count; i++) {
      got.push(await os.getBlob(`small/${i}`));
    }
    return count * size;
  }, count, "natsjs_small_get");
  for (let i = 0; i < count; i++) {
    if (got[i] === null || Buffer.compare(Buffer.from(got[i]), Buffer.from(payloads[i])) !== 0) {
      throw new Error(`small get ${i} returned other bytes than were put`);
    }
  }
  return { ok: true, put: putAnswer, get: getAnswer };
}

const OPS = { put, get, small };

async function main() {
  const arg = process.argv[2];
  const req = JSON.parse(arg !== undefined && arg !== "-" ? arg : readFileSync(0, "utf8"));
  setSha256Backend(req.sha === "js" ? "js" : "native");
  const nc = await connect({ servers: req.url, reconnect: false });
  const apiLvl = nc.info?.api_lvl ?? null;
  let answer;
  try {
    const op = OPS[req.op];
    if (op === undefined) {
      throw new Error(`unknown op ${req.op}`);
    }
    answer = await op(nc, req);
  } finally {
    await nc.close();
  }
  const config = {
    sha: getSha256Backend(),
    batched: req.batched === true,
    obj_version: objVersion,
    api_lvl: apiLvl,
  };
  if (answer.put) {
    Object.assign(answer.put, config);
    Object.assign(answer.get, config);
  }
  Object.assign(answer, config);
  return answer;
}

main().then(
  (answer) => {
    process.stdout.write(JSON.stringify(answer) + "\n");
    process.exit(0);
  },
  (err) => {
    process.stderr.write(`${err?.stack ?? err}\n`);
    process.stdout.write(JSON.stringify({ ok: false, error: String(err?.message ?? err) }) + "\n");
    process.exit(1);
  },
);
