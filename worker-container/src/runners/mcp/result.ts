// MCP CallToolResult → McpServerResult (reference §2.2).
import { create, toBinary } from "@bufbuild/protobuf";
import {
  McpServerResultSchema,
  type McpServerResult_Content,
  McpServerResult_ContentSchema,
} from "../../gen/jobworkerp/runner/mcp_server_result_pb.js";

type Item = Record<string, unknown> & { type?: string };

const str = (v: unknown) => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v));
const optStr = (v: unknown) => (typeof v === "string" ? v : undefined);
const text = (t: string) => create(McpServerResult_ContentSchema, { rawContent: { case: "text", value: { text: t } } });

function contentOf(c: Item): McpServerResult_Content {
  switch (c.type) {
    case "text":
      return text(str(c.text));
    case "image":
      return create(McpServerResult_ContentSchema, { rawContent: { case: "image", value: { data: str(c.data), mimeType: str(c.mimeType) } } });
    case "audio":
      return create(McpServerResult_ContentSchema, { rawContent: { case: "audio", value: { data: str(c.data), mimeType: str(c.mimeType) } } });
    case "resource": {
      const r = (c.resource ?? {}) as Item;
      const resource =
        typeof r.blob === "string"
          ? { case: "blob" as const, value: { uri: str(r.uri), mimeType: optStr(r.mimeType), blob: r.blob } }
          : { case: "text" as const, value: { uri: str(r.uri), mimeType: optStr(r.mimeType), text: str(r.text) } };
      return create(McpServerResult_ContentSchema, { rawContent: { case: "resource", value: { resource } } });
    }
    default:
      // Content kinds newer than jobworkerp's result message (e.g. resource_link) travel as their JSON text.
      return text(JSON.stringify(c));
  }
}

/**
 * Encode a tool's result. `content` is kept as it came; when a tool gives only `structuredContent`, its JSON
 * becomes one text item so nothing is lost.
 */
export function encodeToolResult(result: Record<string, unknown>): Uint8Array {
  const items = Array.isArray(result.content) ? (result.content as Item[]) : [];
  const content = items.map(contentOf);
  // structuredContent, or the pre-2024-11 protocol's `toolResult`
  const structured = result.structuredContent ?? result.toolResult;
  if (content.length === 0 && structured !== undefined) content.push(text(JSON.stringify(structured)));
  return toBinary(McpServerResultSchema, create(McpServerResultSchema, { content, isError: result.isError === true }));
}
