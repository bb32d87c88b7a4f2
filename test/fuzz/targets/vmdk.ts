/** vmdk: the native image-format target (formatSeeds.ts). */
import { formatTarget } from './formatSeeds.ts';

export default formatTarget('vmdk');
