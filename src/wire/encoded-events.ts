/**
 * Server-side variants of our service descriptors in which the `Event`s of
 * chosen messages stay encoded bytes, for our own codecs (src/ingest/event-wire.ts,
 * src/query/event-encode.ts), which are several times faster than
 * protobuf-es's reflective ones.
 *
 * `repeated Event events = 1` and `repeated bytes events = 1` are the same on
 * the wire (length-delimited, field 1), so a variant accepts and produces
 * exactly the bytes the generated descriptor does; protobuf-es then only
 * handles the outer message. Everything else is the generated descriptor: the
 * service and its methods are copied, the other messages reused, and the
 * changed messages keep their names, so paths, method kinds and error texts
 * do not change.
 *
 * Binary only: in JSON a `bytes` field is a base64 string, so JSON requests
 * are served by the generated descriptors (src/http/connect-handler.ts,
 * `binaryRoutes`).
 */
import { clone, create, createFileRegistry, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import {
  DescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  ServiceDescriptorProtoSchema,
  type DescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { EventSchema } from "../../gen/auditlog/v1/event_pb.js";

/** A message whose field 1, `repeated <element>`, is to stay encoded. */
export interface EncodedField {
  message: DescMessage;
  element: DescMessage;
}

// The generated message, with field 1 turned into `repeated bytes`. Cloned
// rather than written out, so that fields added to it later are carried over.
function withElementsAsBytes({ message, element }: EncodedField): DescriptorProto {
  const proto = clone(DescriptorProtoSchema, message.proto);
  const field = proto.field.find((f) => f.number === 1);
  if (
    field === undefined ||
    field.label !== FieldDescriptorProto_Label.REPEATED ||
    field.type !== FieldDescriptorProto_Type.MESSAGE ||
    field.typeName !== `.${element.typeName}`
  ) {
    throw new Error(`${message.typeName}: field 1 is no longer \`repeated ${element.typeName}\`; update src/wire/encoded-events.ts`);
  }
  field.type = FieldDescriptorProto_Type.BYTES;
  field.typeName = "";
  return proto;
}

export interface EncodedEventsVariant {
  service: DescService;
  message(typeName: string): DescMessage;
}

/**
 * The variant of `service` (defined in `file`) in which `messages` (defined
 * in the same file) carry their events as bytes.
 */
export function encodedEventsVariant(file: DescFile, service: DescService, messages: DescMessage[]): EncodedEventsVariant {
  return encodedFieldsVariant(file, service, messages.map((message) => ({ message, element: EventSchema })));
}

/** The same for any message whose field 1 is a repeated message (e.g. the rows of GetStatsResponse). */
export function encodedFieldsVariant(file: DescFile, service: DescService, fields: EncodedField[]): EncodedEventsVariant {
  const wireFile = create(FileDescriptorProtoSchema, {
    name: file.proto.name.replace(/\.proto$/, "_encoded_events.proto"),
    package: file.proto.package,
    syntax: file.proto.syntax,
    // The generated file provides the unchanged types; its own imports are
    // listed too, in case a changed message comes to use one of their types.
    dependency: [file.proto.name, ...file.proto.dependency],
    messageType: fields.map(withElementsAsBytes),
    service: [clone(ServiceDescriptorProtoSchema, service.proto)],
  });
  const known = [file, ...file.dependencies];
  // Types defined later win in a registry, so the service's changed messages
  // resolve to the variants, and the others to the generated descriptors.
  const registry = createFileRegistry(wireFile, (name) => known.find((f) => f.proto.name === name));
  const variant = registry.getService(service.typeName);
  if (variant === undefined) throw new Error(`encoded-events: ${service.typeName} missing`);
  return {
    service: variant,
    message(typeName) {
      const desc = registry.getMessage(typeName);
      if (desc === undefined) throw new Error(`encoded-events: ${typeName} missing`);
      return desc;
    },
  };
}
