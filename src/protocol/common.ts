/** Plain JSON, for payloads whose shape the engine validates itself (recipes). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export type LayerSortKey = 'index' | 'name' | 'op' | 'params' | 'bytes' | 'macs';
