import type { NewProduct } from "./product.ts";

/** The catalog seeded on first start, so that a fresh shop has something to order. */
export const demoCatalog: readonly NewProduct[] = [
  { sku: "TEA-GREEN-100G", name: "Green tea, 100 g", priceCents: 690n, stock: 120n },
  { sku: "TEA-BLACK-100G", name: "Black tea, 100 g", priceCents: 590n, stock: 150n },
  { sku: "COFFEE-BEANS-1KG", name: "Coffee beans, 1 kg", priceCents: 2490n, stock: 60n },
  { sku: "MUG-CERAMIC", name: "Ceramic mug", priceCents: 1200n, stock: 40n },
  { sku: "KETTLE-STEEL", name: "Steel kettle", priceCents: 3900n, stock: 15n },
  { sku: "TEAPOT-GLASS", name: "Glass teapot", priceCents: 2800n, stock: 25n },
  { sku: "FILTER-PAPER-100", name: "Paper filters, 100", priceCents: 450n, stock: 300n },
  { sku: "HONEY-JAR-250G", name: "Honey, 250 g jar", priceCents: 790n, stock: 80n },
];
