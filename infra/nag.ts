// cdk-nag acknowledgements, written next to the resource they excuse: each names the rule (and for IAM4/IAM5 the
// exact finding, e.g. "Resource::*") and why it is accepted here. They apply to the construct and everything under
// it (cdk-nag 3 reads CDK's acknowledged-rules metadata up the tree), so a new resource is still checked in full.
import { Stack, Validations } from "aws-cdk-lib";
import type { IConstruct } from "constructs";

export interface Justification {
  /** Rule id, e.g. "AwsSolutions-IAM5". */
  id: string;
  reason: string;
  /** Granular findings of the rule (IAM4/IAM5): exactly which policy or wildcard is accepted. */
  appliesTo?: string[];
}

export function justify(construct: IConstruct, rules: Justification[]): void {
  const v = Validations.of(construct);
  for (const r of rules) {
    if (r.appliesTo?.length) for (const f of r.appliesTo) v.acknowledge({ id: `${r.id}[${f}]`, reason: r.reason });
    else v.acknowledge({ id: r.id, reason: r.reason });
  }
}

/**
 * How cdk-nag names a value in a granular finding: the resolved CloudFormation value with references flattened
 * (`{Ref: X}` → `<X>`, `Fn::GetAtt [X, Arn]` → `<X.Arn>`, joins concatenated), so an acknowledgement names exactly
 * the ARN (pattern) a statement grants and nothing broader.
 */
export function nagValue(scope: IConstruct, value: string): string {
  return flatten(Stack.of(scope).resolve(value));
}

function flatten(v: unknown): string {
  if (typeof v === "string") return v;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (typeof o.Ref === "string") return `<${o.Ref}>`;
    const att = o["Fn::GetAtt"];
    if (Array.isArray(att)) return `<${att.join(".")}>`;
    const join = o["Fn::Join"];
    if (Array.isArray(join) && Array.isArray(join[1])) return join[1].map(flatten).join(String(join[0]));
  }
  throw new Error(`cannot name ${JSON.stringify(v)} as a cdk-nag finding`);
}
