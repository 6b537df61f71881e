from jaxsuite.cli import main

raise SystemExit(main())
