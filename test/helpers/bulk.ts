import { toJson, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { EventFilterSchema, EventSchema, type Event } from "../../gen/auditlog/v1/event_pb.js";
import { bearer, connectClients } from "./clients.ts";

type Clients = ReturnType<typeof connectClients>;

/** Appends events in requests of `per` and checks each was accepted. */
export async function appendAll(clients: Clients, token: string, events: Event[], per = 2000): Promise<void> {
  for (let i = 0; i < events.length; i += per) {
    const res = await clients.ingest.append({ events: events.slice(i, i + per) }, bearer(token));
    if (res.rejections.length > 0) throw new Error(`rejected: ${JSON.stringify(res.rejections[0])}`);
  }
}

/** Every event matching the filter, through SearchEvents paging, as protobuf JSON. */
export async function searchAllJson(clients: Clients, token: string, filter: MessageInitShape<typeof EventFilterSchema>): Promise<JsonObject[]> {
  const out: JsonObject[] = [];
  let pageToken = "";
  do {
    const res = await clients.query.searchEvents({ filter, pageSize: 1000, pageToken }, bearer(token));
    out.push(...res.events.map((e) => toJson(EventSchema, e) as JsonObject));
    pageToken = res.nextPageToken;
  } while (pageToken);
  return out;
}
