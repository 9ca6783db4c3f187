// The KPI report as chart series (framework-free, unit tested): one label per row, rates in
// percent (one decimal), seconds rounded; a figure the server could not compute (no answered
// call, no rating) stays null: a gap in the chart, never a made-up zero.
import type { KpiReport, KpiRow } from '@/contract';

export interface KpiSeries {
  keys: (string | null)[];
  labels: string[];
  serviceLevel: (number | null)[];
  serviceLevelWithAbandoned: (number | null)[];
  asa: (number | null)[];
  aht: (number | null)[];
  abandonment: (number | null)[];
  csat: (number | null)[];
  fcr: (number | null)[];
}

const percent = (v: number | null) => (v === null ? null : Math.round(v * 1000) / 10);
const seconds = (v: number | null) => (v === null ? null : Math.round(v));

export function kpiSeries(report: KpiReport, label: (row: KpiRow) => string): KpiSeries {
  const rows = report.rows;
  return {
    keys: rows.map((r) => r.key),
    labels: rows.map(label),
    serviceLevel: rows.map((r) => percent(r.service_level)),
    serviceLevelWithAbandoned: rows.map((r) => percent(r.service_level_with_abandoned)),
    asa: rows.map((r) => seconds(r.asa_s)),
    aht: rows.map((r) => seconds(r.aht_s)),
    abandonment: rows.map((r) => percent(r.abandonment_rate)),
    csat: rows.map((r) => percent(r.csat)),
    fcr: rows.map((r) => percent(r.fcr)),
  };
}
