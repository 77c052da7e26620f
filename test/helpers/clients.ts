import { join } from "node:path";
import { ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { IngestService } from "../../gen/auditlog/v1/ingest_pb.js";
import { IntegrityService } from "../../gen/auditlog/v1/integrity_pb.js";
import { QueryService } from "../../gen/auditlog/v1/query_pb.js";
import { TenantService } from "../../gen/auditlog/v1/tenant_pb.js";
import { ROOT } from "./server.ts";

export type Protocol = "connect-json" | "connect-binary" | "grpc" | "grpc-web";

function transport(baseUrl: string, protocol: Protocol) {
  switch (protocol) {
    case "connect-json":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false });
    case "connect-binary":
      return createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true });
    case "grpc":
      return createGrpcTransport({ baseUrl });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
  }
}

/** Generated Connect clients (protobuf-es), over the protocol of choice. */
export function connectClients(baseUrl: string, protocol: Protocol = "connect-json") {
  const t = transport(baseUrl, protocol);
  return {
    ingest: createClient(IngestService, t) as Client<typeof IngestService>,
    query: createClient(QueryService, t) as Client<typeof QueryService>,
    integrity: createClient(IntegrityService, t) as Client<typeof IntegrityService>,
    tenants: createClient(TenantService, t) as Client<typeof TenantService>,
  };
}

export const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

/** An independent gRPC implementation, built from the .proto files at run time. */
export function grpcJsIngestClient(port: number) {
  const definition = protoLoader.loadSync("auditlog/v1/ingest.proto", {
    includeDirs: [join(ROOT, "proto")],
    longs: String,
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    auditlog: { v1: { IngestService: grpc.ServiceClientConstructor } };
  };
  return new pkg.auditlog.v1.IngestService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** Connect JSON exactly as curl sends it. */
export async function postJson(baseUrl: string, path: string, body: unknown, token?: string) {
  const res = await fetch(`${baseUrl}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json };
}

/** The Connect error a call fails with (or a test failure if it succeeds). */
export async function connectFailure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}
