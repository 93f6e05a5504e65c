// Clear errors for AWS resources that are not there: they name the resource and how to create it.
import { AppError } from "../../core/errors.js";

const HOW = "create it with `jobworkerp aws bootstrap` (local endpoints) or by deploying the CDK app";

export function missingQueue(name: string): AppError {
  return new AppError("FAILED_PRECONDITION", `SQS queue '${name}' does not exist: ${HOW}; channels come from the channels config (CHANNELS_CONFIG, ./channels.json)`);
}

export function missingTable(name: string): AppError {
  return new AppError("FAILED_PRECONDITION", `DynamoDB table '${name}' does not exist: ${HOW}`);
}
