/**
 * A server-side descriptor of `auditlog.v1.IngestService` whose request
 * messages carry their events as undecoded bytes.
 *
 * `repeated Event events = 1` and `repeated bytes events = 1` are the same on
 * the wire (length-delimited, field 1), so serving `IngestServiceWire` instead
 * of the generated `IngestService` accepts exactly the same binary requests,
 * but protobuf-es decodes only the outer message and leaves each event as a
 * slice of the request for `decodeEvent` (src/ingest/event-wire.ts), which is
 * several times faster than the reflective decoder.
 *
 * Everything else is the generated descriptor: the service, its methods and
 * the response types are copied or reused, and the request messages keep their
 * names (`auditlog.v1.IngestRequest`, `auditlog.v1.AppendRequest`), so paths,
 * method kinds and error texts do not change. (Because of the shared names,
 * `isMessage(x, IngestRequestSchema)` is also true for a wire variant; the
 * TypeScript types tell them apart.)
 *
 * Binary only: in the JSON encoding a `bytes` field is a base64 string, so a
 * JSON request (Connect with application/json) cannot be decoded with these
 * request messages.
 */
import { clone, create, createFileRegistry, type DescMessage, type DescService, type Message } from "@bufbuild/protobuf";
import type { GenMessage, GenService } from "@bufbuild/protobuf/codegenv2";
import {
  DescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  ServiceDescriptorProtoSchema,
  type DescriptorProto,
} from "@bufbuild/protobuf/wkt";
import {
  AppendRequestSchema,
  AppendResponseSchema,
  IngestRequestSchema,
  IngestResponseSchema,
  IngestService,
  file_auditlog_v1_ingest,
} from "../../gen/auditlog/v1/ingest_pb.js";
import { EventSchema } from "../../gen/auditlog/v1/event_pb.js";

/** `auditlog.v1.IngestRequest` with every event still encoded. */
export type IngestRequestWire = Message<"auditlog.v1.IngestRequest"> & {
  events: Uint8Array[];
};

/** `auditlog.v1.AppendRequest` with every event still encoded. */
export type AppendRequestWire = Message<"auditlog.v1.AppendRequest"> & {
  events: Uint8Array[];
};

// The generated request message, with `events` turned into `repeated bytes`.
// Cloned rather than written out, so that fields added to the request later
// are carried over.
function withEventsAsBytes(schema: DescMessage): DescriptorProto {
  const proto = clone(DescriptorProtoSchema, schema.proto);
  const events = proto.field.find((f) => f.number === 1);
  if (
    events === undefined ||
    events.label !== FieldDescriptorProto_Label.REPEATED ||
    events.type !== FieldDescriptorProto_Type.MESSAGE ||
    events.typeName !== `.${EventSchema.typeName}`
  ) {
    throw new Error(`${schema.typeName}: field 1 is no longer \`repeated ${EventSchema.typeName}\`; update ingest-wire-schema.ts`);
  }
  events.type = FieldDescriptorProto_Type.BYTES;
  events.typeName = "";
  return proto;
}

const generated = file_auditlog_v1_ingest;

const wireFile = create(FileDescriptorProtoSchema, {
  name: "auditlog/v1/ingest_wire.proto",
  package: generated.proto.package,
  syntax: generated.proto.syntax,
  // The generated file provides the response types; its own imports are
  // listed too, in case a request message comes to use one of their types.
  dependency: [generated.proto.name, ...generated.proto.dependency],
  messageType: [withEventsAsBytes(IngestRequestSchema), withEventsAsBytes(AppendRequestSchema)],
  service: [clone(ServiceDescriptorProtoSchema, IngestService.proto)],
});

const knownFiles = [generated, ...generated.dependencies];

// Types defined later win in a registry, so the service's `.auditlog.v1.
// IngestRequest` resolves to the variant above, and the responses to the
// generated descriptors themselves.
const registry = createFileRegistry(wireFile, (name) => knownFiles.find((f) => f.proto.name === name));

function mustMessage(typeName: string): DescMessage {
  const desc = registry.getMessage(typeName);
  if (desc === undefined) throw new Error(`ingest-wire-schema: ${typeName} missing`);
  return desc;
}

function mustService(typeName: string): DescService {
  const desc = registry.getService(typeName);
  if (desc === undefined) throw new Error(`ingest-wire-schema: ${typeName} missing`);
  return desc;
}

export const IngestRequestWireSchema = mustMessage(IngestRequestSchema.typeName) as GenMessage<IngestRequestWire>;
export const AppendRequestWireSchema = mustMessage(AppendRequestSchema.typeName) as GenMessage<AppendRequestWire>;

export const IngestServiceWire = mustService(IngestService.typeName) as GenService<{
  ingest: {
    methodKind: "client_streaming";
    input: typeof IngestRequestWireSchema;
    output: typeof IngestResponseSchema;
  };
  append: {
    methodKind: "unary";
    input: typeof AppendRequestWireSchema;
    output: typeof AppendResponseSchema;
  };
}>;
