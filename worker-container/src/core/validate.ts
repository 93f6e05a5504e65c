// Input checks shared by the services: enums must be known values, numbers sane.
import type { DescEnum, DescMessage } from "@bufbuild/protobuf";
import { fromBinary } from "@bufbuild/protobuf";
import { invalid } from "./errors.js";

export function checkEnum(desc: DescEnum, value: number, field: string): void {
  if (!desc.values.some((v) => v.number === value)) {
    throw invalid(`${field}: ${value} is not a valid ${desc.name}`);
  }
}

/** Decode bytes with a schema, turning decode failures into INVALID_ARGUMENT. */
export function decodeOrInvalid(schema: DescMessage, bytes: Uint8Array, field: string) {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw invalid(`${field}: cannot be decoded as ${schema.typeName}: ${(e as Error).message}`);
  }
}

export function checkName(name: string, field: string, max = 128): void {
  if (name.trim().length === 0) throw invalid(`${field} must not be empty`);
  if (name.length > max) throw invalid(`${field} is longer than ${max} characters`);
}
