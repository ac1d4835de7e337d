// Decodes Sparkplug B payloads with Eclipse Tahu's JavaScript library (npm sparkplug-payload),
// for harvest/tests/sparkplug_payload.rs.
//
// stdin: one request per line; stdout: one JSON object per request, in the same order.
//   hex of a payload → {"tahu": <what decodePayload returns>, "raw": <the protobuf message as
//                       protobufjs reads it>}, or {"error": "..."} when it does not decode
//   a JSON object    → {"encoded": <hex of encodePayload(object)>}, for commands as Tahu
//                       writes them
// `tahu` is what an application built on Tahu sees (values interpreted by datatype); `raw` shows
// which fields are on the wire (is_null, seq, the value field used), which `tahu` leaves out.
// 64-bit integers are printed as decimal strings: JSON numbers lose precision past 2^53.

import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const require = createRequire(import.meta.url);
const sparkplug = require("sparkplug-payload").get("spBv1.0");
const Long = require("long");
const { Payload } = require("sparkplug-payload/lib/sparkplugPayloadProto").org.eclipse.tahu.protobuf;

/** Long → decimal string, bytes → hex, recursively; everything else as it is. */
function plain(value) {
    if (Long.isLong(value)) {
        return value.toString();
    }
    if (value instanceof Uint8Array) {
        return Buffer.from(value).toString("hex");
    }
    if (Array.isArray(value)) {
        return value.map(plain);
    }
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, plain(inner)]));
    }
    return value;
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
    const request = line.trim();
    if (request === "") {
        continue;
    }
    let out;
    try {
        if (request.startsWith("{")) {
            const encoded = sparkplug.encodePayload(JSON.parse(request));
            out = { encoded: Buffer.from(encoded).toString("hex") };
        } else {
            const bytes = Buffer.from(request, "hex");
            const raw = Payload.toObject(Payload.decode(bytes), { longs: String, bytes: String, oneofs: true });
            out = { tahu: plain(sparkplug.decodePayload(bytes)), raw: plain(raw) };
        }
    } catch (error) {
        out = { error: String(error) };
    }
    process.stdout.write(JSON.stringify(out) + "\n");
}
