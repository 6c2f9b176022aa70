// Errors of the command-line tools: printed as `Error: <message>` (never a stack trace), then the
// process exits with the error's code.

/** An error to print as `Error: <message>` before exiting with `exitCode` (1 runtime, 2 usage). */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** A bad command line: exit code 2, and the command's usage is printed after the message. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}
