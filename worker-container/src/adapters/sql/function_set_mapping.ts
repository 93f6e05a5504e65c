// FunctionSet ↔ function_set row. The targets are kept as a serialized FunctionSetData carrying only them.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Insertable, Selectable } from "kysely";
import { FunctionSetDataSchema, FunctionSetSchema, type FunctionSet } from "../../gen/jobworkerp/function/data/function_set_pb.js";
import { big, bytes, num } from "./mapping.js";
import type { FunctionSetTable } from "./schema.js";

export function functionSetValues(set: FunctionSet): Omit<Insertable<FunctionSetTable>, "created_at"> {
  const d = set.data!;
  return {
    id: set.id!.value,
    name: d.name,
    description: d.description,
    category: d.category,
    targets: toBinary(FunctionSetDataSchema, create(FunctionSetDataSchema, { targets: d.targets })),
  };
}

export function rowToFunctionSet(r: Selectable<FunctionSetTable>): FunctionSet {
  const { targets } = fromBinary(FunctionSetDataSchema, bytes(r.targets));
  return create(FunctionSetSchema, {
    id: { value: big(r.id) },
    data: { name: r.name, description: r.description, category: num(r.category), targets },
  });
}
