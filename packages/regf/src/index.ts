/**
 * @guestlens/regf: a read-only Windows registry hive reader, from a hive's
 * bytes (a Buffer, or a BlockSource for big hives), and the Windows facts
 * guestlens inspection reads from the SOFTWARE and SYSTEM hives.
 */
export {
  openHive,
  Hive,
  RegistryKey,
  RegistryValue,
  DEFAULT_HIVE_LIMITS,
  splitPath,
  type HiveInput,
  type HiveLimits,
  type OpenHiveOptions,
} from './hive.ts';
export type { BaseBlock } from './baseBlock.ts';
export type { KeySecurity } from './security.ts';
export type { TransactionLogInput, TransactionLogInfo } from './transactionLog.ts';
export { decodeData, typeName, utf16String, utf16Strings, type RegData, type RegTypeName } from './valueData.ts';
export { filetimeToTimestamp, filetimeToIso, type Timestamp } from './filetime.ts';
export { nameHash, upcaseName, namesEqual } from './names.ts';
export { REG, KEY_FLAGS } from './layout.ts';
export {
  RegfError,
  RegfCorruptError,
  RegfChecksumError,
  RegfFormatError,
  RegfLimitError,
  RegfValueTypeError,
  type RegfErrorCode,
} from './errors.ts';
export {
  windowsFacts,
  type WindowsFacts,
  type WindowsVersionFacts,
  type WindowsApplication,
  type WindowsSystemFacts,
  type DriveMapping,
  type FactWarning,
} from './windows/windowsFacts.ts';
export { decodeMountedDevice, type MountedDevice, type MountedDeviceTarget } from './windows/mountedDevices.ts';
export { windowsOsinfo, type OsinfoInput } from './windows/osinfo.ts';
