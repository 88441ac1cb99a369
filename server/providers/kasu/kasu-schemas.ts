/**
 * zod schemas for KASU's answers. They are deliberately lenient where KASU's own PHP is known to vary
 * (its public repository): amounts and counts come from MySQL and may arrive as strings ("6200.00"),
 * older versions spell keys `Costo`, `Status` and `foma_pago` (sic) / `tasa_interes`, and older answers have no `ok`.
 * Anything else that does not fit is a broken answer (PROVIDER_UNAVAILABLE), never guessed around.
 */
import { z } from 'zod';

/** A non-negative amount in pesos, as a JSON number or a numeric string. */
const Pesos = z
  .union([z.number(), z.string().trim().regex(/^\d+(\.\d+)?$/).transform(Number)])
  .pipe(z.number().finite().nonnegative());

const Count = z.union([z.number(), z.string().trim().regex(/^\d+$/).transform(Number)]).pipe(z.number().int().nonnegative());

/** `ok` is absent in older versions; when present it must be true on a success status. */
const OkFlag = z.literal(true).optional();

/** Copies each alias to its canonical key when the canonical key is missing. */
function withAliases(aliases: Record<string, string>) {
  return (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const out: Record<string, unknown> = { ...value };
    for (const [alias, canonical] of Object.entries(aliases)) {
      if (out[canonical] === undefined && out[alias] !== undefined) out[canonical] = out[alias];
    }
    return out;
  };
}

export const TokenFullResponseSchema = z.object({
  ok: OkFlag,
  token: z.string().min(1),
  nombre: z.string(),
  // Kept loose: the values are echoed back verbatim (KASU's token is an HMAC of exactly this JSON).
  token_data: z.looseObject({
    timestamp: z.union([z.number(), z.string().min(1)]),
    expires_in: z.union([z.number().positive(), z.string().regex(/^\d+$/)]),
  }),
});
export type TokenFullResponse = z.infer<typeof TokenFullResponseSchema>;

export const ModifyRecordResponseSchema = z.preprocess(
  withAliases({ Costo: 'costo', Comision: 'comision', foma_pago: 'forma_pago' }),
  z.object({
    ok: OkFlag,
    producto: z.string().min(1),
    costo: Pesos,
    comision: Pesos,
    forma_pago: z.preprocess(
      withAliases({ tasa_interes: 'tasa_anual' }),
      z.object({ meses_max: Count.pipe(z.number().min(1)), tasa_anual: Pesos }),
    ),
  }),
);
export type ModifyRecordResponse = z.infer<typeof ModifyRecordResponseSchema>;

export const NewServiceResponseSchema = z.object({
  ok: OkFlag,
  mensaje: z.string().optional(),
  datos_compra: z.preprocess(
    withAliases({ Status: 'status', Costo: 'costo', Poliza: 'poliza', Nombre: 'nombre' }),
    z.object({
      nombre: z.string(),
      CURP: z.string().optional(),
      mail: z.string().optional(),
      producto: z.string().optional(),
      poliza: z.string().min(1),
      status: z.string().min(1),
      costo: Pesos,
      // Older versions send neither: the adapter then falls back to what it asked for / null.
      numero_pagos: Count.optional(),
      pago_link: z.url().nullable().optional(),
    }),
  ),
});
export type NewServiceResponse = z.infer<typeof NewServiceResponseSchema>;

/** Whatever an error answer carries, to put KASU's own words into the log (never into an error message). */
export const KasuErrorBodySchema = z.looseObject({
  mensaje: z.string().optional(),
  message: z.string().optional(),
});
