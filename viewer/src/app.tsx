// The application's routes and the frame around them. Signed out, every
// path shows the login, which returns to that path afterwards.

import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { useEffect } from 'preact/hooks';
import { whenUnauthenticated } from './api';
import { Header } from './components/header';
import { useApp } from './context';
import { Login } from './pages/login';
import { Reading } from './pages/reading';
import { Worklist } from './pages/worklist';

export function App() {
  return (
    <LocationProvider>
      <Shell />
    </LocationProvider>
  );
}

function Shell() {
  const { user, setUser, t } = useApp();
  const location = useLocation();
  useEffect(() => {
    // A session that ends while the page is open (expiry, logout in another
    // tab) brings the login back, then returns here.
    whenUnauthenticated(() => setUser(null));
  }, [setUser]);
  if (!user) return <Login expired={location.path !== '/' && location.path !== '/login'} />;
  return (
    <div class="shell">
      <Header />
      <main class="content">
        <Router>
          <Route path="/" component={Worklist} />
          <Route path="/login" component={Worklist} />
          <Route path="/read/:id" component={Reading} />
          <Route default component={() => <NotFound text={t('error.notFound')} back={t('error.back')} />} />
        </Router>
      </main>
    </div>
  );
}

function NotFound(props: { text: string; back: string }) {
  return (
    <section class="empty-page">
      <p>{props.text}</p>
      <a href="/">{props.back}</a>
    </section>
  );
}
