// A partner's Node.js client for safeshare over the Connect protocol
// (issue 20): code generated from proto/safeshare.proto by
// @bufbuild/protoc-gen-es, transport from @connectrpc/connect-node, the
// agency's client certificate for mutual TLS.
//
//   node client.mjs GEN_DIR URL PKI_DIR
//
// Makes a disclosure request (police), a holder write (children's social
// care) and an audit query (auditor); prints one line per call and exits
// non-zero if any answer is not what a partner would expect.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

const [gen, baseUrl, pki] = process.argv.slice(2);
const pb = await import(pathToFileURL(`${gen}/safeshare_pb.js`).href);

function transport(agency, binary) {
  return createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    useBinaryFormat: binary,
    nodeOptions: {
      ca: readFileSync(`${pki}/ca.crt`),
      cert: readFileSync(`${pki}/${agency}.crt`),
      key: readFileSync(`${pki}/${agency}.key`),
    },
  });
}

function check(what, ok, detail) {
  console.log(`${ok ? "ok" : "FAIL"} ${what}: ${detail}`);
  if (!ok) process.exitCode = 1;
}

// 1. A practitioner's request (JSON on the wire).
const disclosures = createClient(pb.DisclosureService, transport("police", false));
const d = await disclosures.request({
  purpose: "child_protection", caseReference: "CP-NODE-1", practitioner: "DC Jones",
  subjectId: "S1001", recordType: "person", fields: ["full_name"],
});
check("DisclosureService.Request", d.decision === pb.Decision.ALLOW &&
  d.released.length === 1 && d.released[0].value === "Amelia Hart" &&
  d.disclosureId > 0n, `decision=${pb.Decision[d.decision]} id=${d.disclosureId}`);

// 2. A holder write (binary protobuf on the wire): flag the holder's own subject.
const holder = createClient(pb.HolderService, transport("childrens_social_care", true));
const w = await holder.write({
  ops: [{ kind: pb.HolderOpKind.HOLDER_OP_FLAG, subjectId: "S1001", flag: "hate_crime" }],
});
check("HolderService.Write", w.applied === 1 && w.checked === 1,
  `applied=${w.applied} checked=${w.checked}`);

// ... and the write refused for a subject another holder holds: a Connect error.
try {
  await holder.write({ ops: [{ kind: pb.HolderOpKind.HOLDER_OP_FLAG,
    subjectId: "S1002", flag: "hate_crime" }] });
  check("HolderService.Write (another's subject)", false, "accepted");
} catch (e) {
  const err = ConnectError.from(e);
  check("HolderService.Write (another's subject)", err.code !== Code.Unknown &&
    err.code !== Code.Internal, `code=${Code[err.code]} message=${err.rawMessage}`);
}

// 3. An auditor's query: the two calls above are in the log.
const audit = createClient(pb.AuditService, transport("auditor", false));
const q = await audit.query({ kind: "holder", newestFirst: true, limit: 5 });
check("AuditService.Query", q.entries.length >= 1 && q.entries[0].kind === "holder" &&
  q.entries[0].agency === "childrens_social_care" && q.logSize > 0n,
  `entries=${q.entries.length} log_size=${q.logSize}`);

// 4. A role the certificate lacks is permission_denied, not a crash.
try {
  await audit.verify({});
  const bad = createClient(pb.AuditService, transport("police", false));
  await bad.verify({});
  check("AuditService.Verify (police)", false, "accepted");
} catch (e) {
  const err = ConnectError.from(e);
  check("AuditService.Verify (police)", err.code === Code.PermissionDenied,
    `code=${Code[err.code]}`);
}
