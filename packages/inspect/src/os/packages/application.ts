/** An installed application (a package), with the fields virt-inspector shows. */
export interface Application {
  name: string;
  displayName?: string;
  epoch?: number;
  version: string;
  release?: string;
  arch?: string;
  installPath?: string;
  publisher?: string;
  url?: string;
  /** The first line of the description (dpkg's synopsis, RPM's Summary). */
  summary?: string;
  /** The long description, when the database has one. */
  description?: string;
  /** dpkg's Source: the source package it was built from. */
  sourcePackage?: string;
}

/** What was found, and why the list may be missing or incomplete. */
export interface ApplicationList {
  /** dpkg, rpm (sqlite), or undefined when no package database was found. */
  source?: string;
  applications: Application[];
  problem?: string;
}
