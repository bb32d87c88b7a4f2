/**
 * @guestlens/nbd: a read-only NBD client (fixed newstyle, structured replies,
 * base:allocation), a BlockSource over it, and openWithQemu, which starts a
 * private qemu-storage-daemon on an image for the formats guestlens has no
 * native reader for, and openNetworkWithQemu for libvirt's network disks.
 */
export {
  NbdClient,
  STATE_HOLE,
  STATE_ZERO,
  BASE_ALLOCATION,
  TRANSMISSION_FLAG_READ_ONLY,
  type NbdConnectOptions,
  type NbdExportInfo,
  type BlockStatusExtent,
} from './nbdClient.ts';
export { NbdSource, type NbdSourceOptions } from './nbdSource.ts';
export { openWithQemu, openNetworkWithQemu, daemonArgs, detectFormat, liveDaemons, QEMU_FORMATS, DAEMON_DIR_PREFIX, type OpenWithQemuOptions } from './storageDaemon.ts';
export { networkBlockdev, networkDiskName, isNetworkProtocol, NetworkDiskError, NETWORK_PROTOCOLS, type NetworkDisk, type NetworkHost, type NetworkProtocol } from './networkDisk.ts';
export {
  NbdError,
  NbdProtocolError,
  NbdOptionError,
  NbdCommandError,
  NbdConnectionError,
  NbdTimeoutError,
  NbdClosedError,
  QemuDaemonError,
  PassphraseError,
  ImageAccessError,
} from './errors.ts';
