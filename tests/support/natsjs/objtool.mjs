// objtool: drive the official nats.js Object Store client (@nats-io/obj) for osfs interop tests.
//
// Usage:  node objtool.mjs '<json request>'     or     echo '<json request>' | node objtool.mjs
//
// One request in, one JSON result on stdout. Failures print {"error": "<message>"} and exit 1.
// The request always has "cmd" and "url" (the NATS server URL); most commands also take "bucket".
//
//   create      bucket, opts?: {description, ttl (ns), storage, replicas, max_bytes, metadata,
//               compression}                                   -> {status}
//   put         bucket, name, data (base64) | file, description?, metadata?, headers?
//               ({name: [values]}), chunk_size?                -> {info, elapsed_ms}
//   get         bucket, name, file?                           -> {found, info, data?, size, elapsed_ms}
//   info        bucket, name                                  -> {info | null} (deleted included)
//   delete      bucket, name                                  -> {success, purged}
//   update      bucket, name, meta: {name?, description?, metadata?, headers?, options?}
//                                                             -> {seq}
//   link        bucket, name, target, target_bucket?          -> {info}
//   link_store  bucket, name, target_bucket                   -> {info}
//   list        bucket                                        -> {entries}
//   seal        bucket                                        -> {status}
//   status      bucket                                        -> {status}
//   buckets                                                   -> {buckets: [status]}
//   watch       bucket, include_history?, ignore_deletes?, count?, initial?, timeout_ms?
//               -> {entries, timed_out}; writes "READY\n" to stderr once the watcher is live.
//               Stops after `count` entries (0 = none, null = no limit), or with `initial` (and
//               include_history) after the initial values: nats.js flags the *last* initial
//               entry as isUpdate already, so that entry ends the collection.
//
// Only the public API of @nats-io/obj (Objm, ObjectStore) is used for object store operations.

import { createReadStream, createWriteStream, readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

import { connect, headers as makeHeaders } from "@nats-io/transport-node";
import { Objm } from "@nats-io/obj";

function readRequest() {
  const arg = process.argv[2];
  const text = arg !== undefined && arg !== "-" ? arg : readFileSync(0, "utf8");
  const req = JSON.parse(text);
  if (typeof req !== "object" || req === null || typeof req.cmd !== "string") {
    throw new Error("request must be a JSON object with a 'cmd'");
  }
  return req;
}

function need(req, key) {
  const value = req[key];
  if (value === undefined || value === null) {
    throw new Error(`request field '${key}' is required for '${req.cmd}'`);
  }
  return value;
}

function toHeaders(record) {
  const h = makeHeaders();
  for (const [key, values] of Object.entries(record)) {
    for (const value of Array.isArray(values) ? values : [values]) {
      h.append(key, String(value));
    }
  }
  return h;
}

// ObjectInfo (ObjectInfoImpl from info()/put(), or the raw documents list()/watch() yield)
// as plain JSON. Keys that the document does not have come out as null.
function plainInfo(oi) {
  if (oi === null || oi === undefined) {
    return null;
  }
  let headers = oi.headers ?? {};
  if (typeof headers.toRecord === "function") {
    headers = headers.toRecord();
  }
  const out = {
    name: oi.name,
    description: oi.description ?? null,
    headers,
    metadata: oi.metadata ?? null,
    options: oi.options ?? null,
    bucket: oi.bucket ?? null,
    nuid: oi.nuid ?? null,
    size: oi.size ?? null,
    chunks: oi.chunks ?? null,
    digest: oi.digest ?? null,
    deleted: oi.deleted ?? false,
    mtime: oi.mtime ?? null,
    revision: oi.revision ?? null,
  };
  if (oi.isUpdate !== undefined) {
    out.is_update = oi.isUpdate;
  }
  return out;
}

function plainStatus(st) {
  return {
    bucket: st.bucket,
    description: st.description,
    ttl: st.ttl,
    storage: st.storage,
    replicas: st.replicas,
    sealed: st.sealed,
    size: st.size,
    backing_store: st.backingStore,
    metadata: st.metadata ?? null,
    compression: st.compression,
  };
}

function putMeta(req) {
  const meta = { name: need(req, "name") };
  if (req.description !== undefined) meta.description = req.description;
  if (req.metadata !== undefined) meta.metadata = req.metadata;
  if (req.headers !== undefined) meta.headers = toHeaders(req.headers);
  if (req.chunk_size) meta.options = { max_chunk_size: req.chunk_size };
  return meta;
}

async function readAll(stream) {
  const parts = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value && value.length) {
      parts.push(value);
      size += value.length;
    }
  }
  return Buffer.concat(parts, size);
}

const commands = {
  async create(objm, req) {
    const os = await objm.create(need(req, "bucket"), req.opts ?? {});
    return { status: plainStatus(await os.status()) };
  },

  async put(objm, req) {
    const os = await objm.open(need(req, "bucket"));
    const meta = putMeta(req);
    const started = performance.now();
    let info;
    if (req.file !== undefined) {
      // Stream the file: @nats-io/obj consumes a ReadableStream chunk by chunk.
      const rs = Readable.toWeb(createReadStream(req.file, { highWaterMark: 1 << 20 }));
      info = await os.put(meta, rs);
    } else {
      const data = Buffer.from(need(req, "data"), "base64");
      info = await os.putBlob(meta, new Uint8Array(data.buffer, data.byteOffset, data.length));
    }
    return { info: plainInfo(info), elapsed_ms: performance.now() - started };
  },

  async get(objm, req) {
    const os = await objm.open(need(req, "bucket"));
    const started = performance.now();
    const result = await os.get(need(req, "name"));
    if (result === null) {
      return { found: false, info: null };
    }
    const out = { found: true, info: plainInfo(result.info) };
    if (req.file !== undefined) {
      let size = 0;
      const counted = Readable.fromWeb(result.data);
      counted.on("data", (chunk) => {
        size += chunk.length;
      });
      await Promise.all([pipeline(counted, createWriteStream(req.file)), result.error]);
      const err = await result.error;
      if (err) throw err;
      out.size = size;
    } else {
      const [err, data] = await Promise.all([result.error, readAll(result.data)]);
      if (err) throw err;
      out.data = data.toString("base64");
      out.size = data.length;
    }
    out.elapsed_ms = performance.now() - started;
    return out;
  },

  async info(objm, req) {
    const os = await objm.open(need(req, "bucket"));
    return { info: plainInfo(await os.info(need(req, "name"))) };
  },

  async delete(objm, req) {
    const os = await objm.open(need(req, "bucket"));
    const r = await os.delete(need(req, "name"));
    return { success: r.success, purged: r.purged };
  },

  async update(objm, req) {
    const os = await objm.open(need(req, "bucket"));
    const given = need(req, "meta");
    const meta = {};
    for (const key of ["name", "description", "metadata", "options"]) {
      if (given[key] !== undefined) meta[key] = given[key];
    }
    if (given.headers !== undefined) meta.headers = toHeaders(given.headers);
    const ack = await os.update(need(req, "name"), meta);
    return { seq: ack.seq, stream: ack.stream };
  },

  async link(objm, req) {
    const os = await objm.open(need(req, "bucket"));
    const targetBucket = req.target_bucket ?? req.bucket;
    const targetStore = targetBucket === req.bucket ? os : await objm.open(targetBucket);
    const target = await targetStore.info(need(req, "target"));
    if (target === null) {
      throw new Error(`link target ${targetBucket}/${req.target} not found`);
    }
    return { info: plainInfo(await os.link(need(req, "name"), target)) };
  },

  async link_store(objm, req) {
    const os = await objm.open(need(req, "bucket"));
    const target = await objm.open(need(req, "target_bucket"));
    return { info: plainInfo(await os.linkStore(need(req, "name"), target)) };
  },

  async list(objm, req) {
    const os = await objm.open(need(req, "bucket"));
    return { entries: (await os.list()).map(plainInfo) };
  },

  async seal(objm, req) {
    const os = await objm.open(need(req, "bucket"));
    return { status: plainStatus(await os.seal()) };
  },

  async status(objm, req) {
    const os = await objm.open(need(req, "bucket"));
    return { status: plainStatus(await os.status()) };
  },

  async buckets(objm) {
    const out = [];
    for await (const st of objm.list()) {
      out.push(plainStatus(st));
    }
    return { buckets: out };
  },

  async watch(objm, req) {
    const os = await objm.open(need(req, "bucket"));
    const count = req.count === undefined ? 1 : req.count ?? Infinity;
    const initialOnly = req.initial === true;
    const timeoutMs = req.timeout_ms ?? 10000;
    const iter = await os.watch({
      includeHistory: req.include_history ?? false,
      ignoreDeletes: req.ignore_deletes ?? false,
    });
    process.stderr.write("READY\n");
    const entries = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      iter.stop();
    }, timeoutMs);
    if (count > 0) {
      for await (const entry of iter) {
        entries.push(plainInfo(entry));
        if (entries.length >= count || (initialOnly && entry.isUpdate)) break;
      }
    }
    clearTimeout(timer);
    iter.stop();
    return { entries, timed_out: timedOut };
  },
};

function message(err) {
  if (err instanceof Error) {
    return err.message || String(err);
  }
  return String(err);
}

async function main() {
  let nc = null;
  try {
    const req = readRequest();
    const command = commands[req.cmd];
    if (command === undefined) {
      throw new Error(`unknown cmd '${req.cmd}'`);
    }
    nc = await connect({ servers: need(req, "url"), timeout: req.connect_timeout_ms ?? 5000 });
    const result = await command(new Objm(nc), req);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    await nc.close();
    return 0;
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ error: message(err) })}\n`);
    if (nc !== null) {
      await nc.close().catch(() => {});
    }
    return 1;
  }
}

process.exitCode = await main();
