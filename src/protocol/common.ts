export type LayerSortKey = 'index' | 'name' | 'op' | 'params' | 'bytes' | 'macs';
