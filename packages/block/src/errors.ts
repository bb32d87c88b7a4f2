/**
 * The one error base of guestlens. Every package's errors extend it (or, for
 * the few that must stay a built-in subclass such as RangeError, carry its
 * brand), so the CLI, the exporter and the retry logic can treat any error
 * the same way:
 *
 *  - `code`: a stable, machine-readable string (errno names where one fits:
 *    EFSCORRUPTED, EFSBADCRC, EOPNOTSUPP, ENOENT, ...);
 *  - `userFacing`: a problem with the input or the environment, not a bug:
 *    the CLI prints the message alone, without a stack;
 *  - `retryable`: the cause may be a live image caught half-way through an
 *    update; refreshing and reading again may succeed;
 *  - `data`: the structured facts behind the message (image, offset, ...);
 *  - `toJSON()`: what `--json` output and the exporter show of it.
 */

const BRAND = Symbol.for('guestlens.error');

export interface GuestlensErrorOptions {
  /** Default true: most errors are about the input, not a bug. */
  userFacing?: boolean;
  retryable?: boolean;
  data?: Record<string, unknown>;
  cause?: unknown;
}

export interface GuestlensErrorShape {
  readonly code: string;
  readonly userFacing: boolean;
  readonly retryable: boolean;
  readonly data: Record<string, unknown>;
  toJSON(): GuestlensErrorJson;
}

export interface GuestlensErrorJson {
  name: string;
  code: string;
  message: string;
  retryable: boolean;
  data?: Record<string, unknown>;
}

export class GuestlensError extends Error implements GuestlensErrorShape {
  readonly code: string;
  readonly userFacing: boolean;
  readonly retryable: boolean;
  readonly data: Record<string, unknown>;

  constructor(code: string, message: string, options: GuestlensErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.userFacing = options.userFacing ?? true;
    this.retryable = options.retryable ?? false;
    this.data = options.data ?? {};
    brand(this);
  }

  toJSON(): GuestlensErrorJson {
    return errorJson(this);
  }

  /**
   * Errors that must extend a built-in class (RangeError) carry the brand
   * instead, and still count as GuestlensErrors. Subclasses inherit this
   * static method, so for them the ordinary prototype test applies.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== GuestlensError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** Mark an error object as one of ours (for classes that cannot extend GuestlensError). */
export function brand(err: object): void {
  Object.defineProperty(err, BRAND, { value: true, enumerable: false });
}

export function errorJson(err: GuestlensErrorShape & Error): GuestlensErrorJson {
  const json: GuestlensErrorJson = { name: err.name, code: err.code, message: err.message, retryable: err.retryable };
  if (Object.keys(err.data).length) json.data = err.data;
  return json;
}

export function isGuestlensError(err: unknown): err is GuestlensError {
  return err instanceof GuestlensError;
}

/** Whether `err` says a refresh and another read may succeed (torn metadata of a live image). */
export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === true;
}

/** Whether `err` is about the input or environment (printed without a stack) rather than a bug. */
export function isUserFacing(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { userFacing?: unknown }).userFacing === true;
}
