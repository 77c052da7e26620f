/**
 * `auditlog.v1.IngestService` with the requests' events still encoded
 * (src/wire/encoded-events.ts): protobuf-es decodes only the outer message
 * and leaves each event as a slice of the request for `decodeEvent`
 * (src/ingest/event-wire.ts). Serves binary requests only.
 */
import type { Message } from "@bufbuild/protobuf";
import type { GenMessage, GenService } from "@bufbuild/protobuf/codegenv2";
import {
  AppendRequestSchema,
  AppendResponseSchema,
  IngestRequestSchema,
  IngestResponseSchema,
  IngestService,
  file_auditlog_v1_ingest,
} from "../../gen/auditlog/v1/ingest_pb.js";
import { encodedEventsVariant } from "../wire/encoded-events.ts";

/** `auditlog.v1.IngestRequest` with every event still encoded. */
export type IngestRequestWire = Message<"auditlog.v1.IngestRequest"> & {
  events: Uint8Array[];
};

/** `auditlog.v1.AppendRequest` with every event still encoded. */
export type AppendRequestWire = Message<"auditlog.v1.AppendRequest"> & {
  events: Uint8Array[];
};

const variant = encodedEventsVariant(file_auditlog_v1_ingest, IngestService, [IngestRequestSchema, AppendRequestSchema]);

export const IngestRequestWireSchema = variant.message(IngestRequestSchema.typeName) as GenMessage<IngestRequestWire>;
export const AppendRequestWireSchema = variant.message(AppendRequestSchema.typeName) as GenMessage<AppendRequestWire>;

export const IngestServiceWire = variant.service as GenService<{
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
