export * from './blockSource.ts';
export { RawFileSource } from './rawFile.ts';
export * from './formatProbe.ts';
