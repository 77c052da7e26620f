/**
 * `auditlog.v1.QueryService` with the big repeated parts of two answers
 * already encoded (src/wire/encoded-events.ts): SearchEvents' events, by
 * `encodeEvent` (src/query/event-encode.ts), TailEvents' events the same way,
 * and GetStats' rows (src/query/stats.ts).
 * Serves binary requests only; the other methods stay generated.
 */
import type { Message } from "@bufbuild/protobuf";
import type { GenMessage, GenService } from "@bufbuild/protobuf/codegenv2";
import { EventSchema } from "../../gen/auditlog/v1/event_pb.js";
import {
  GetStatsRequestSchema,
  GetStatsResponseSchema,
  QueryService,
  SearchEventsRequestSchema,
  SearchEventsResponseSchema,
  StatsRowSchema,
  TailEventsRequestSchema,
  TailEventsResponseSchema,
  type TailLag,
  file_auditlog_v1_query,
} from "../../gen/auditlog/v1/query_pb.js";
import { encodedFieldsVariant } from "../wire/encoded-events.ts";

/** `auditlog.v1.SearchEventsResponse` with every event already encoded. */
export type SearchEventsResponseWire = Message<"auditlog.v1.SearchEventsResponse"> & {
  events: Uint8Array[];
  nextPageToken: string;
};

/** `auditlog.v1.GetStatsResponse` with every row already encoded. */
export type GetStatsResponseWire = Message<"auditlog.v1.GetStatsResponse"> & {
  rows: Uint8Array[];
  total: bigint;
  fromRollup: boolean;
};

/** `auditlog.v1.TailEventsResponse` with every event already encoded. */
export type TailEventsResponseWire = Message<"auditlog.v1.TailEventsResponse"> & {
  events: Uint8Array[];
  cursor: string;
  lag?: TailLag;
  live: boolean;
};

const variant = encodedFieldsVariant(file_auditlog_v1_query, QueryService, [
  { message: SearchEventsResponseSchema, element: EventSchema },
  { message: TailEventsResponseSchema, element: EventSchema },
  { message: GetStatsResponseSchema, element: StatsRowSchema },
]);

export const SearchEventsResponseWireSchema = variant.message(SearchEventsResponseSchema.typeName) as GenMessage<SearchEventsResponseWire>;
export const GetStatsResponseWireSchema = variant.message(GetStatsResponseSchema.typeName) as GenMessage<GetStatsResponseWire>;
export const TailEventsResponseWireSchema = variant.message(TailEventsResponseSchema.typeName) as GenMessage<TailEventsResponseWire>;

// Typed for the methods served from it; register each alone (`router.rpc`).
const QueryServiceWire = variant.service as GenService<{
  searchEvents: { methodKind: "unary"; input: typeof SearchEventsRequestSchema; output: typeof SearchEventsResponseWireSchema };
  getStats: { methodKind: "unary"; input: typeof GetStatsRequestSchema; output: typeof GetStatsResponseWireSchema };
  tailEvents: { methodKind: "server_streaming"; input: typeof TailEventsRequestSchema; output: typeof TailEventsResponseWireSchema };
}>;

export const searchEventsWire = QueryServiceWire.method.searchEvents;
export const getStatsWire = QueryServiceWire.method.getStats;
export const tailEventsWire = QueryServiceWire.method.tailEvents;
