/**
 * `auditlog.v1.QueryService` with SearchEvents answering with its events
 * already encoded (src/wire/encoded-events.ts) by `encodeEvent`
 * (src/query/event-encode.ts). Serves binary requests only.
 */
import type { Message } from "@bufbuild/protobuf";
import type { GenMessage, GenService } from "@bufbuild/protobuf/codegenv2";
import { QueryService, SearchEventsRequestSchema, SearchEventsResponseSchema, file_auditlog_v1_query } from "../../gen/auditlog/v1/query_pb.js";
import { encodedEventsVariant } from "../wire/encoded-events.ts";

/** `auditlog.v1.SearchEventsResponse` with every event already encoded. */
export type SearchEventsResponseWire = Message<"auditlog.v1.SearchEventsResponse"> & {
  events: Uint8Array[];
  nextPageToken: string;
};

const variant = encodedEventsVariant(file_auditlog_v1_query, QueryService, [SearchEventsResponseSchema]);

export const SearchEventsResponseWireSchema = variant.message(SearchEventsResponseSchema.typeName) as GenMessage<SearchEventsResponseWire>;

// Typed for SearchEvents only: the other methods are served by the generated service.
const QueryServiceWire = variant.service as GenService<{
  searchEvents: { methodKind: "unary"; input: typeof SearchEventsRequestSchema; output: typeof SearchEventsResponseWireSchema };
}>;

/** The SearchEvents method of the variant: register it alone (`router.rpc`). */
export const searchEventsWire = QueryServiceWire.method.searchEvents;
