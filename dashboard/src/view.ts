/** What the router needs of a page: its title, how to refresh it in place, how to stop it. */
export interface View {
  title: string;
  /** The header's breadcrumb, when it says more than the route did. */
  where?: string;
  /** Called every few seconds; updates the page without rebuilding it. */
  refresh?(): Promise<void>;
  stop?(): void;
}
